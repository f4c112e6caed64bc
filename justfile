# Mirrors .ci/run (install `just` to use it; CI runs .ci/run directly).
ci:
    bash .ci/run

test:
    cargo test --release --workspace

report:
    cargo run --release -p experiments -- all

bench:
    cargo bench -p claimlab-benches
