//! Times one continuous fit with the full xmin scan: `cargo run --release -p claimlab-spectral --example time_fit FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: time_fit FILE");
    let data: Vec<f64> = std::fs::read_to_string(path)
        .expect("readable file")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let t = std::time::Instant::now();
    let fit =
        claimlab_spectral::fit_power_law(&data, &claimlab_spectral::PowerLawConfig::continuous())
            .expect("fit");
    println!("{:?} in {:.3} s", fit, t.elapsed().as_secs_f64());
}
