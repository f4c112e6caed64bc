//! Deterministic Schreier-Sims: a base and strong generating set (BSGS) with explicit transversals.
//!
//! This is the engine behind [`crate::PermGroup`] for the parts of a group that are not recognised
//! as a whole symmetric or alternating group. It follows the incremental deterministic algorithm
//! (Holt, Eick, O'Brien, *Handbook of Computational Group Theory*, 2005, §4.4.2, procedure
//! SCHREIERSIMS): strong generators are added whenever a Schreier generator fails to sift, and
//! Schreier generators already tested are remembered so that none is sifted twice.

use std::collections::HashSet;

use num_bigint::BigUint;
use num_traits::One;
use rand::RngExt;

use crate::error::{Error, Result};
use crate::perm::Perm;

/// Work and memory bounds for one Schreier-Sims run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Elementary point operations (a product of two degree-`n` permutations counts `n`).
    pub(crate) max_work: u64,
    /// Stored transversal entries (points), summed over levels, `u` and `u^-1` counted apart.
    pub(crate) max_entries: u64,
}

const NONE: u32 = u32::MAX;

/// One level of the stabiliser chain: the basic orbit of `base_point` under the strong generators
/// that fix all earlier base points, with a transversal.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    pub(crate) base_point: usize,
    /// Indices into [`Bsgs::strong`] of the generators of this level's group.
    pub(crate) gens: Vec<usize>,
    /// The basic orbit, in discovery order; `orbit[0] == base_point`.
    pub(crate) orbit: Vec<u32>,
    /// `pos[x]` is the index of `x` in `orbit`, or `NONE`.
    pos: Vec<u32>,
    /// `u[k]` maps the base point to `orbit[k]`.
    u: Vec<Perm>,
    /// `u_inv[k]` is the inverse of `u[k]`.
    u_inv: Vec<Perm>,
}

impl Level {
    fn new(n: usize, base_point: usize) -> Self {
        let mut pos = vec![NONE; n];
        pos[base_point] = 0;
        Self {
            base_point,
            gens: Vec::new(),
            orbit: vec![base_point as u32],
            pos,
            u: vec![Perm::identity(n)],
            u_inv: vec![Perm::identity(n)],
        }
    }

    /// Extends the orbit after `new_gens` (indices into `strong`) joined `self.gens`.
    fn extend(&mut self, strong: &[Perm], new_gens: &[usize]) {
        let old_len = self.orbit.len();
        for k in 0..old_len {
            for &g in new_gens {
                self.try_add(k, &strong[g]);
            }
        }
        let mut k = old_len;
        while k < self.orbit.len() {
            for gi in 0..self.gens.len() {
                let g = self.gens[gi];
                self.try_add(k, &strong[g]);
            }
            k += 1;
        }
    }

    fn try_add(&mut self, k: usize, g: &Perm) {
        let y = g.images()[self.orbit[k] as usize];
        if self.pos[y as usize] == NONE {
            self.pos[y as usize] = self.orbit.len() as u32;
            self.orbit.push(y);
            let uy = self.u[k].mul(g);
            self.u_inv.push(uy.inverse());
            self.u.push(uy);
        }
    }

    fn index_of(&self, x: usize) -> Option<usize> {
        let p = self.pos[x];
        (p != NONE).then_some(p as usize)
    }
}

/// A base and strong generating set with one transversal per level.
#[derive(Clone, Debug)]
pub(crate) struct Bsgs {
    pub(crate) n: usize,
    pub(crate) strong: Vec<Perm>,
    pub(crate) levels: Vec<Level>,
}

impl Bsgs {
    /// Runs deterministic Schreier-Sims on `gens` (all of degree `n`), with the base starting with
    /// `base_prefix`. Redundant base points (trivial basic orbits) are removed at the end, except
    /// those of the prefix.
    pub(crate) fn new(
        n: usize,
        gens: &[Perm],
        base_prefix: &[usize],
        limits: Limits,
    ) -> Result<Self> {
        let mut strong: Vec<Perm> = Vec::new();
        for g in gens {
            if !g.is_identity() && !strong.contains(g) {
                strong.push(g.clone());
            }
        }
        let mut base: Vec<usize> = base_prefix.to_vec();
        for s in &strong {
            if base.iter().all(|&b| s.image(b) == b) {
                // The first moved point: a cheap, deterministic choice.
                let p = (0..n).find(|&i| s.image(i) != i).unwrap_or(0);
                base.push(p);
            }
        }
        let mut levels: Vec<Level> = Vec::with_capacity(base.len());
        for (i, &b) in base.iter().enumerate() {
            let mut lv = Level::new(n, b);
            lv.gens = (0..strong.len())
                .filter(|&s| base[..i].iter().all(|&c| strong[s].image(c) == c))
                .collect();
            let all = lv.gens.clone();
            lv.gens.clear();
            lv.gens.extend_from_slice(&all);
            lv.extend(&strong, &all);
            levels.push(lv);
        }
        let mut bsgs = Self { n, strong, levels };
        bsgs.complete(limits)?;
        // Strip redundant levels beyond the prefix: a trivial basic orbit means the next group in
        // the chain equals this one.
        let keep = base_prefix.len();
        let mut idx = 0;
        bsgs.levels.retain(|lv| {
            idx += 1;
            idx <= keep || lv.orbit.len() > 1
        });
        Ok(bsgs)
    }

    /// The main loop: test every Schreier generator of every level, bottom up.
    fn complete(&mut self, limits: Limits) -> Result<()> {
        let n = self.n as u64;
        let mut work = 0u64;
        let entries =
            |levels: &[Level]| -> u64 { levels.iter().map(|l| 2 * l.orbit.len() as u64 * n).sum() };
        let mut checked: Vec<HashSet<(u32, u32)>> = vec![HashSet::new(); self.levels.len()];
        let mut i = self.levels.len() as isize - 1;
        while i >= 0 {
            let li = i as usize;
            let mut jumped = None;
            'outer: for k in 0..self.levels[li].orbit.len() {
                for gi in 0..self.levels[li].gens.len() {
                    if !checked[li].insert((k as u32, gi as u32)) {
                        continue;
                    }
                    let lv = &self.levels[li];
                    let s = &self.strong[lv.gens[gi]];
                    let y = s.image(lv.orbit[k] as usize);
                    let ky = lv
                        .index_of(y)
                        .expect("orbit is closed under its generators");
                    let mut h = lv.u[k].mul(s);
                    h.mul_assign(&lv.u_inv[ky]);
                    let (res, j) = if h.is_identity() {
                        (h, usize::MAX)
                    } else {
                        self.sift_from(h, li + 1)
                    };
                    let sifted = if j == usize::MAX { 0 } else { (j - li) as u64 };
                    work = work.saturating_add(n * (3 + sifted));
                    if work > limits.max_work {
                        return Err(Error::TooLarge {
                            what: "Schreier-Sims work (point operations)",
                            size: format!("more than {work}"),
                            limit: limits.max_work.to_string(),
                        });
                    }
                    if j == usize::MAX || (j == self.levels.len() && res.is_identity()) {
                        continue;
                    }
                    // `res` fixes base points 0..j: a new strong generator for levels li+1..=j.
                    let idx = self.strong.len();
                    if j == self.levels.len() {
                        let p = (0..self.n).find(|&x| res.image(x) != x).unwrap_or(0);
                        self.levels.push(Level::new(self.n, p));
                        checked.push(HashSet::new());
                    }
                    self.strong.push(res);
                    for l in li + 1..=j {
                        self.levels[l].gens.push(idx);
                        let strong = &self.strong;
                        self.levels[l].extend(strong, &[idx]);
                    }
                    let stored = entries(&self.levels);
                    if stored > limits.max_entries {
                        return Err(Error::TooLarge {
                            what: "Schreier-Sims transversals (stored points)",
                            size: stored.to_string(),
                            limit: limits.max_entries.to_string(),
                        });
                    }
                    jumped = Some(j);
                    break 'outer;
                }
            }
            match jumped {
                Some(j) => i = j as isize,
                None => i -= 1,
            }
        }
        Ok(())
    }

    /// Sifts `g` through levels `start..`; returns the residue and the level where it stopped
    /// (`levels.len()` if it passed all of them).
    pub(crate) fn sift_from(&self, mut g: Perm, start: usize) -> (Perm, usize) {
        for (l, lv) in self.levels.iter().enumerate().skip(start) {
            let x = g.image(lv.base_point);
            match lv.index_of(x) {
                Some(k) => g.mul_assign(&lv.u_inv[k]),
                None => return (g, l),
            }
        }
        (g, self.levels.len())
    }

    /// Whether `g` (degree `n`) is in the group.
    pub(crate) fn contains(&self, g: &Perm) -> bool {
        let (res, j) = self.sift_from(g.clone(), 0);
        j == self.levels.len() && res.is_identity()
    }

    /// The exact order: the product of the basic orbit lengths.
    pub(crate) fn order(&self) -> BigUint {
        self.levels.iter().fold(BigUint::one(), |acc, lv| {
            acc * BigUint::from(lv.orbit.len())
        })
    }

    /// The base points.
    pub(crate) fn base(&self) -> Vec<usize> {
        self.levels.iter().map(|lv| lv.base_point).collect()
    }

    /// The strong generators that are used by some level.
    pub(crate) fn strong_generators(&self) -> Vec<Perm> {
        let mut used = vec![false; self.strong.len()];
        for lv in &self.levels {
            for &g in &lv.gens {
                used[g] = true;
            }
        }
        self.strong
            .iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Generators of the stabiliser of the first `k` base points (those strong generators of level
    /// `k`); empty for the trivial group.
    pub(crate) fn level_generators(&self, k: usize) -> Vec<Perm> {
        self.levels.get(k).map_or_else(Vec::new, |lv| {
            lv.gens.iter().map(|&g| self.strong[g].clone()).collect()
        })
    }

    /// A uniformly distributed element: independent uniform transversal elements, deepest first.
    pub(crate) fn uniform_element<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Perm {
        let mut g = Perm::identity(self.n);
        for lv in self.levels.iter().rev() {
            let k = rng.random_range(0..lv.orbit.len());
            g.mul_assign(&lv.u[k]);
        }
        g
    }

    /// Calls `f` on every element (deepest-level transversal first); the caller bounds the order.
    pub(crate) fn for_each_element(&self, f: &mut dyn FnMut(&Perm)) {
        fn rec(b: &Bsgs, level: usize, acc: &Perm, f: &mut dyn FnMut(&Perm)) {
            if level == 0 {
                f(acc);
                return;
            }
            let lv = &b.levels[level - 1];
            for u in &lv.u {
                rec(b, level - 1, &acc.mul(u), f);
            }
        }
        rec(self, self.levels.len(), &Perm::identity(self.n), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, n: usize) -> Perm {
        Perm::parse_cycles(s, n).unwrap()
    }

    const L: Limits = Limits {
        max_work: u64::MAX,
        max_entries: u64::MAX,
    };

    #[test]
    fn symmetric_and_cyclic_orders() {
        let b = Bsgs::new(5, &[p("(1,2)", 5), p("(1,2,3,4,5)", 5)], &[], L).unwrap();
        assert_eq!(b.order(), BigUint::from(120u32));
        let c = Bsgs::new(6, &[p("(1,2,3,4,5,6)", 6)], &[], L).unwrap();
        assert_eq!(c.order(), BigUint::from(6u32));
        assert!(c.contains(&p("(1,3,5)(2,4,6)", 6)));
        assert!(!c.contains(&p("(1,2)", 6)));
    }

    #[test]
    fn base_prefix_is_kept_first() {
        let b = Bsgs::new(5, &[p("(1,2)", 5), p("(1,2,3,4,5)", 5)], &[3], L).unwrap();
        assert_eq!(b.base()[0], 3);
        assert_eq!(b.levels[0].orbit.len(), 5);
        // Stabiliser of point 4 (0-based 3) in S5 is S4.
        let stab = Bsgs::new(5, &b.level_generators(1), &[], L).unwrap();
        assert_eq!(stab.order(), BigUint::from(24u32));
        assert!(stab.strong.iter().all(|g| g.image(3) == 3));
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn limits_give_too_large() {
        let n = 12;
        let gens = [
            Perm::from_cycles(n, &[vec![0, 1]]).unwrap(),
            Perm::from_cycles(n, &[(0..n).collect()]).unwrap(),
        ];
        let tight = Limits {
            max_work: 1000,
            max_entries: u64::MAX,
        };
        assert!(matches!(
            Bsgs::new(n, &gens, &[], tight),
            Err(Error::TooLarge { .. })
        ));
        let small_mem = Limits {
            max_work: u64::MAX,
            max_entries: 100,
        };
        assert!(matches!(
            Bsgs::new(n, &gens, &[], small_mem),
            Err(Error::TooLarge { .. })
        ));
    }
}
