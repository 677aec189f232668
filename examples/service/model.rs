//! The records the service keeps, the request bodies that create and change them, and the
//! JSON it answers with.

use revkv::Version;
use revkv::http::HttpError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The order states and the transitions between them.
pub const ORDER_TRANSITIONS: [(&str, &str); 3] = [
    ("pending", "paid"),
    ("paid", "shipped"),
    ("pending", "cancelled"),
];

/// A registered user, under a generated id. Usernames are unique as sent; e-mail addresses
/// are unique regardless of case.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct User {
    pub username: String,
    pub email: String,
}

/// Stock of one item, under its SKU.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Item {
    pub stock: u32,
}

/// An order of `quantity` pieces of one item, under a generated id.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Order {
    pub sku: String,
    pub quantity: u32,
    pub status: String,
}

/// A document whose fields are edited independently, under a generated id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Doc {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

/// `POST /users` and `PUT /users/{id}`; a PUT may carry the `version` it replaces instead of
/// an `If-Match` header.
#[derive(Deserialize, ToSchema)]
pub struct UserInput {
    /// 1 to 64 printable characters, unique as sent.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    username: String,
    /// An address such as ada@example.com, unique regardless of case.
    #[schema(max_length = 254, pattern = r"^[^\s@]+@\S+$")]
    email: String,
    /// `PUT` only: the version it replaces, instead of `If-Match` (`409` when stale).
    #[serde(default)]
    pub version: Option<Version>,
}

impl UserInput {
    /// The user to store.
    ///
    /// # Errors
    /// `422` for an empty or over-long username, or an e-mail address without `@`.
    pub fn user(&self) -> Result<User, HttpError> {
        let username = self.username.trim();
        if username.is_empty()
            || username.chars().count() > 64
            || username.chars().any(char::is_control)
        {
            return Err(HttpError::invalid_body(
                "username must be 1 to 64 printable characters",
            ));
        }
        let email = self.email.trim();
        let well_formed = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !well_formed || email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(HttpError::invalid_body(
                "email must be an address such as ada@example.com",
            ));
        }
        Ok(User {
            username: username.to_owned(),
            email: email.to_owned(),
        })
    }
}

/// `DELETE /users/{id}` may carry the `version` it deletes instead of an `If-Match` header.
#[derive(Deserialize, ToSchema)]
pub struct VersionInput {
    pub version: Option<Version>,
}

/// `POST /items`.
#[derive(Deserialize, ToSchema)]
pub struct ItemInput {
    /// The item's key and path segment, as `sku_fits` says (the pattern spells it without
    /// look-ahead, which not every OpenAPI tool reads).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})$"
    )]
    pub sku: String,
    pub stock: u32,
}

impl ItemInput {
    /// Checks that the SKU can stand in a URL path as it is.
    ///
    /// # Errors
    /// `422` for a SKU that is not a [`sku_fits`].
    pub fn validate(&self) -> Result<(), HttpError> {
        if sku_fits(&self.sku) {
            Ok(())
        } else {
            Err(HttpError::invalid_body(
                "sku must be 1 to 64 letters, digits, '.', '_' or '-', and not . or ..",
            ))
        }
    }
}

/// Whether `sku` is a path segment as it is, so that `/items/{sku}` leads to its item: 1 to
/// 64 letters, digits, `.`, `_` and `-`, and not the dot-segments `.` and `..`, which a
/// client removes from a path before it sends it (RFC 3986 §5.2.4).
pub fn sku_fits(sku: &str) -> bool {
    (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && sku != "."
        && sku != ".."
}

/// `POST /orders`.
#[derive(Deserialize, ToSchema)]
pub struct OrderInput {
    /// The SKU of an existing item (`422` for any other).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})$"
    )]
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: u32,
}

/// `POST /orders/{id}/transitions`.
#[derive(Deserialize, ToSchema)]
pub struct TransitionInput {
    /// The state to move to: pending -> paid -> shipped, or pending -> cancelled.
    pub to: String,
}

/// `POST /docs` and `PATCH /docs/{id}`: the whole document as the client wants it; a PATCH
/// may carry the `version` the client edited, to merge its change into the current document.
#[derive(Deserialize, ToSchema)]
pub struct DocInput {
    /// 1 to 200 characters, trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: String,
    body: String,
    /// At most 32 tags of 1 to 64 characters, trimmed.
    #[schema(max_items = 32)]
    tags: Vec<String>,
    /// `PATCH` only: the version edited, to merge the edit into the current document.
    #[serde(default)]
    pub version: Option<Version>,
}

impl DocInput {
    /// The document to store.
    ///
    /// # Errors
    /// `422` for a title that is empty or over 200 characters, or more than 32 tags or a tag
    /// that is empty or over 64 characters.
    pub fn doc(&self) -> Result<Doc, HttpError> {
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(HttpError::invalid_body("title must be 1 to 200 characters"));
        }
        let tag_fits = |tag: &String| (1..=64).contains(&tag.trim().chars().count());
        if self.tags.len() > 32 || !self.tags.iter().all(tag_fits) {
            return Err(HttpError::invalid_body(
                "tags must be at most 32, each 1 to 64 characters",
            ));
        }
        Ok(Doc {
            title: title.to_owned(),
            body: self.body.clone(),
            tags: self.tags.iter().map(|tag| tag.trim().to_owned()).collect(),
        })
    }
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: String,
    username: String,
    email: String,
    version: Version,
}

pub fn user_view(id: &str, user: &User, version: Version) -> UserView {
    UserView {
        id: id.to_owned(),
        username: user.username.clone(),
        email: user.email.clone(),
        version,
    }
}

/// A user as the change feed shows it to anyone: without the e-mail, since a taken e-mail's
/// `409` does not say who holds it either.
#[derive(Serialize, ToSchema)]
pub struct PublicUserView {
    id: String,
    username: String,
    version: Version,
}

pub fn public_user_view(id: &str, user: &User, version: Version) -> PublicUserView {
    PublicUserView {
        id: id.to_owned(),
        username: user.username.clone(),
        version,
    }
}

/// An item as the API shows it; its id is its SKU.
#[derive(Serialize, ToSchema)]
pub struct ItemView {
    id: String,
    sku: String,
    stock: u32,
    version: Version,
}

pub fn item_view(sku: &str, item: &Item, version: Version) -> ItemView {
    ItemView {
        id: sku.to_owned(),
        sku: sku.to_owned(),
        stock: item.stock,
        version,
    }
}

/// An order as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    id: String,
    sku: String,
    quantity: u32,
    status: String,
    version: Version,
}

pub fn order_view(id: &str, order: &Order, version: Version) -> OrderView {
    OrderView {
        id: id.to_owned(),
        sku: order.sku.clone(),
        quantity: order.quantity,
        status: order.status.clone(),
        version,
    }
}

/// A document as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct DocView {
    id: String,
    title: String,
    body: String,
    tags: Vec<String>,
    version: Version,
}

pub fn doc_view(id: &str, doc: &Doc, version: Version) -> DocView {
    DocView {
        id: id.to_owned(),
        title: doc.title.clone(),
        body: doc.body.clone(),
        tags: doc.tags.clone(),
        version,
    }
}

/// A fresh record id: `prefix` and 64 random bits in hex.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", fastrand::u64(..))
}
