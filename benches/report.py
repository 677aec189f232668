#!/usr/bin/env python3
"""Prints the ratios BENCHMARKS.md reports, from the last `cargo bench` run.

Reads criterion's estimates under target/criterion and prints, for every target of the
benchmarks issue, the two figures it compares (median throughput, operations per second) and
their ratio. Run it from the repository root after `cargo bench`.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path("target/criterion")


def ops_per_second(group, bench, elements=1):
    """Median throughput of one benchmark, in operations per second."""
    path = ROOT / group / bench / "new" / "estimates.json"
    if not path.exists():
        return None
    median_ns = json.loads(path.read_text())["median"]["point_estimate"]
    return elements * 1e9 / median_ns


def row(name, target, numerator, denominator, higher_is_better=True):
    if numerator is None or denominator is None:
        print(f"| {name} | {target} | not measured | | |")
        return
    ratio = numerator / denominator if higher_is_better else denominator / numerator
    print(f"| {name} | {target} | {numerator:,.0f} | {denominator:,.0f} | {ratio:.2f}x |")


def main():
    if not ROOT.exists():
        sys.exit("no target/criterion: run `cargo bench` first")
    print("| target | wanted | revkv (ops/s) | baseline (ops/s) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    row("1. CAS update vs raw sled CAS loop", ">= 0.85x",
        ops_per_second("cas_update_1_thread", "revkv_update"),
        ops_per_second("cas_update_1_thread", "sled_cas_loop"))
    row("2. unique insert vs sled 2-tree transaction", ">= 4x",
        ops_per_second("unique_insert_1_thread", "revkv_unique_insert"),
        ops_per_second("unique_insert_1_thread", "sled_transaction_2_trees"))
    row("2. (reference) unique insert vs its floor, 2 unchecked sled inserts", "",
        ops_per_second("unique_insert_1_thread", "revkv_unique_insert"),
        ops_per_second("unique_insert_1_thread", "sled_2_inserts_unchecked"))
    row("2. (reference) that floor vs the sled 2-tree transaction", "",
        ops_per_second("unique_insert_1_thread", "sled_2_inserts_unchecked"),
        ops_per_second("unique_insert_1_thread", "sled_transaction_2_trees"))
    row("2. (reference) floor of an index kept in memory, 1 checked sled insert, vs the transaction", "",
        ops_per_second("unique_insert_1_thread", "sled_1_insert_checked"),
        ops_per_second("unique_insert_1_thread", "sled_transaction_2_trees"))
    one = ops_per_second("contention_hot_key", "revkv_update_with/1")
    for threads in (2, 8):
        row(f"3. hot key, {threads} threads vs 1 thread", ">= 0.8x",
            ops_per_second("contention_hot_key", f"revkv_update_with/{threads}"), one)
    durable_one = ops_per_second("durable_writes", "revkv_immediate/1")
    durable_eight = ops_per_second("durable_writes", "revkv_immediate/8")
    row("4. durable, 8 writers vs 1 writer", ">= 5x", durable_eight, durable_one)
    for engine, bench in (("redb", "redb_immediate"), ("fjall", "fjall_sync_data")):
        best = max(filter(None, (ops_per_second("durable_writes", f"{bench}/{w}") for w in (1, 8))),
                   default=None)
        row(f"4. durable, revkv 8 writers vs {engine} (best of 1 and 8 writers)", ">= 4x",
            durable_eight, best)
    for records in (1_000_000, 20_000):
        revkv = ops_per_second("bulk_load", f"revkv_load/{records}", records)
        if revkv is None:
            continue
        row(f"5. bulk load of {records:,} records: time vs raw sled inserts", "<= 1.15x",
            revkv, ops_per_second("bulk_load", f"sled_insert_per_op/{records}", records),
            higher_is_better=False)
        row(f"5. (reference) fjall insert vs raw sled inserts", "",
            ops_per_second("bulk_load", f"fjall_insert/{records}", records),
            ops_per_second("bulk_load", f"sled_insert_per_op/{records}", records))


if __name__ == "__main__":
    main()
