//! Reference tests against `../shared/reference/spectral/`.
use claimlab_spectral::{fit_power_law, PowerLawConfig};
use claimlab_testkit::{read_column, read_json, reference_dir};
use serde_json::Value;

fn spectral(name: &str) -> std::path::PathBuf {
    reference_dir().join("spectral").join(name)
}

fn csn_cases() -> Vec<Value> {
    read_json(spectral("results_csn_ref.json"))["cases"]
        .as_array()
        .unwrap()
        .clone()
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs(),
        "{what}: {a} vs {b} (rel {rel})"
    );
}

#[test]
fn continuous_fits_match_csn_reference() {
    for case in csn_cases() {
        if case["discrete"].as_bool().unwrap() {
            continue;
        }
        let file = case["file"].as_str().unwrap();
        let data = read_column(spectral(file));
        let fit = fit_power_law(&data, &PowerLawConfig::continuous()).unwrap();
        eprintln!("{file}: {fit:?}");
        // xmin is a data value; the JSON printer may differ from the data file in the last ulp
        close(fit.xmin, case["xmin"].as_f64().unwrap(), 1e-15, "xmin");
        assert_eq!(fit.n_tail as u64, case["n_tail"].as_u64().unwrap());
        assert_eq!(
            fit.n_candidates as u64,
            case["n_candidates"].as_u64().unwrap()
        );
        close(fit.alpha, case["alpha"].as_f64().unwrap(), 1e-10, "alpha");
        close(fit.sigma, case["sigma"].as_f64().unwrap(), 1e-10, "sigma");
        close(fit.ks_distance, case["D"].as_f64().unwrap(), 1e-10, "D");
        close(
            fit.log_likelihood,
            case["loglik_power_law"].as_f64().unwrap(),
            1e-10,
            "loglik",
        );
    }
}

#[test]
fn discrete_fit_matches_csn_reference() {
    let case = csn_cases()
        .into_iter()
        .find(|c| c["discrete"].as_bool().unwrap())
        .unwrap();
    let data = read_column(spectral(case["file"].as_str().unwrap()));
    let fit = fit_power_law(&data, &PowerLawConfig::discrete()).unwrap();
    eprintln!("{fit:?}");
    close(fit.xmin, case["xmin"].as_f64().unwrap(), 0.0, "xmin");
    assert_eq!(fit.n_tail as u64, case["n_tail"].as_u64().unwrap());
    assert_eq!(
        fit.n_candidates as u64,
        case["n_candidates"].as_u64().unwrap()
    );
    // The reference maximised the likelihood numerically and stopped 6e-9 (relative) short of
    // the root of the score equation; ours solves it to ~1e-15 (checked by brute force in the
    // unit tests and in a Python check of the score: residual 8.5e-13 at our alpha). Hence 1e-7.
    close(fit.alpha, case["alpha"].as_f64().unwrap(), 1e-7, "alpha");
    close(fit.sigma, case["sigma"].as_f64().unwrap(), 1e-7, "sigma");
    // The reference's Fisher-information error is 1.2e-5 relative off a brute-force sum of
    // Var[ln X] over 2e6 terms (0.0168375311085 at our alpha); ours agrees with that sum to 1e-12.
    close(
        fit.sigma_fisher.unwrap(),
        case["sigma_discrete_exact"].as_f64().unwrap(),
        2e-5,
        "sigma_fisher",
    );
    close(
        fit.sigma_fisher.unwrap(),
        0.016_837_531_108_503_813,
        1e-10,
        "sigma_fisher brute force",
    );
    close(fit.ks_distance, case["D"].as_f64().unwrap(), 1e-6, "D");
    // the fixed-xmin variant gives the same fit
    let fixed = fit_power_law(&data, &PowerLawConfig::discrete().with_xmin(1.0)).unwrap();
    assert_eq!(fixed.n_candidates, 1);
    close(fixed.alpha, fit.alpha, 1e-14, "fixed alpha");
}

#[test]
fn likelihood_ratios_match_csn_reference() {
    use claimlab_spectral::{compare_power_law, Alternative, AlternativeParams};
    for case in csn_cases() {
        if case["discrete"].as_bool().unwrap() {
            continue;
        }
        let file = case["file"].as_str().unwrap();
        let data = read_column(spectral(file));
        let fit = fit_power_law(&data, &PowerLawConfig::continuous()).unwrap();
        // pareto n=1000: the lognormal and truncated optima run off to the power-law limit
        // (mu = -4e5, Lambda = 2e-14), where R is optimiser noise near 0: compare absolutely.
        let degenerate = file.starts_with("pareto_alpha2.5_xmin1_n1000_");
        for (alt, key) in [
            (Alternative::Exponential, "exponential"),
            (Alternative::Lognormal, "lognormal"),
            (Alternative::TruncatedPowerLaw, "truncated_power_law"),
        ] {
            let lr = compare_power_law(&data, &fit, alt).unwrap();
            let want = &case["compare"][key];
            let r = want["R"].as_f64().unwrap();
            let p = want["p"].as_f64().unwrap();
            eprintln!(
                "{file} {key}: R {} vs {r}; p {} vs {p}; Rn {} vs {}; {:?}",
                lr.ratio, lr.p_value, lr.normalized_ratio, want["R_normalized"], lr.params
            );
            if degenerate && alt != Alternative::Exponential {
                assert!(lr.ratio.abs() < 1e-3, "{key}: R {}", lr.ratio);
                continue;
            }
            assert!(lr.ratio.signum() == r.signum(), "{key}: sign");
            close(lr.ratio, r, 1e-6, "R");
            close(
                lr.log_likelihood,
                case[key]["loglik"].as_f64().unwrap(),
                1e-6,
                "loglik alt",
            );
            // R and the log-likelihoods agree to ~1e-9; the optima of the lognormal and truncated
            // fits are flat, so their parameters (and the per-point variance behind the normalised
            // R and p) agree only to ~1e-6 relative.
            close(
                lr.normalized_ratio,
                want["R_normalized"].as_f64().unwrap(),
                1e-4,
                "R normalised",
            );
            close(lr.p_value, p, 1e-4, "p");
            if let AlternativeParams::Exponential { lambda } = lr.params {
                close(
                    lambda,
                    case["exponential"]["Lambda"].as_f64().unwrap(),
                    1e-12,
                    "exp lambda",
                );
            }
        }
        let se = compare_power_law(&data, &fit, Alternative::StretchedExponential).unwrap();
        let ex = compare_power_law(&data, &fit, Alternative::Exponential).unwrap();
        // the stretched exponential nests the exponential (beta = 1)
        assert!(
            se.log_likelihood >= ex.log_likelihood - 1e-9,
            "{file}: stretched {} < exp {}",
            se.log_likelihood,
            ex.log_likelihood
        );
    }
}
