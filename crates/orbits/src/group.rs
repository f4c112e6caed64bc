//! Permutation groups from generators: exact order, membership, orbits, stabilisers, random
//! elements, base and strong generating set.
//!
//! # How the group is analysed
//! The generators are split into classes of orbits: two orbits belong to the same class when one
//! generator moves points of both. Generators of different classes have disjoint supports, so the
//! group is the direct product of the groups of the classes (a *factor* each). A factor that is one
//! orbit of size `m >= 8` is tested for being the whole symmetric or alternating group on its orbit
//! (a "giant") by Jordan's theorem: a transitive group of degree `m` that contains a `p`-cycle for a
//! prime `m/2 < p <= m - 3` is primitive and therefore contains `A_m` (Dixon and Mortimer,
//! *Permutation Groups*, 1996, Thm 3.3E; the same test as GAP's `IsNaturalSymmetricGroup`). Such a
//! `p`-cycle is the power `x^(L/p)` of an element `x` with a cycle of length `p`; the candidates `x`
//! are the generators and a fixed, seeded sequence of product-replacement elements. The result is a
//! proof, not a guess: when the test succeeds the factor is `S_m` (some generator is odd) or `A_m`,
//! with a closed-form BSGS. Every other factor gets deterministic Schreier-Sims on its own points
//! ([`crate::schreier_sims`]). So a product of symmetric groups of degree thousands costs a few
//! dozen permutation products per block, while a large factor that is neither giant nor small falls
//! back to Schreier-Sims, whose cost grows like `m^5` in the worst case.

use num_bigint::BigUint;
use num_traits::One;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::schreier_sims::{Bsgs, Limits};

/// Orbits of this size or larger are tested for being giants; smaller ones go to Schreier-Sims.
const GIANT_MIN_DEGREE: usize = 8;

/// Knobs of the group analysis. The defaults keep one construction within about a minute and a
/// gigabyte on one core; raise them for larger non-giant groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupConfig {
    /// How many product-replacement elements the giant test inspects before it hands the factor
    /// to Schreier-Sims (default 200; a giant of degree `m` shows a suitable prime cycle in about
    /// one element in `ln m / ln 2`, so 200 leaves a miss probability far below 1e-9).
    pub giant_tries: usize,
    /// Seed of the giant test's random elements (fixed, so the analysis is deterministic).
    pub giant_seed: u64,
    /// Most elementary point operations one Schreier-Sims run may spend (default 1.5·10^10, about half a minute).
    pub max_schreier_sims_work: u64,
    /// Most transversal points one Schreier-Sims run may store (default 2^27, 512 MiB).
    pub max_transversal_entries: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            giant_tries: 200,
            giant_seed: 0x6a09_e667_f3bc_c908,
            max_schreier_sims_work: 15_000_000_000,
            max_transversal_entries: 1 << 27,
        }
    }
}

impl GroupConfig {
    fn limits(&self) -> Limits {
        Limits {
            max_work: self.max_schreier_sims_work,
            max_entries: self.max_transversal_entries,
        }
    }
}

/// What kind of group a factor of a [`PermGroup`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorKind {
    /// The full symmetric group on the factor's points (recognised structurally).
    Symmetric,
    /// The alternating group on the factor's points (recognised structurally).
    Alternating,
    /// A group handled by Schreier-Sims (stabiliser chain with explicit transversals).
    StabiliserChain,
}

/// One direct factor of a [`PermGroup`]: a group acting on `points`, trivially elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactorSummary {
    /// The points the factor acts on, ascending (a union of orbits of the group).
    pub points: Vec<usize>,
    /// How it is represented.
    pub kind: FactorKind,
    /// Its exact order.
    pub order: BigUint,
}

#[derive(Clone, Debug)]
enum Repr {
    Symmetric,
    Alternating,
    Chain(Bsgs),
}

#[derive(Clone, Debug)]
struct Factor {
    /// Local index -> global point, ascending.
    points: Vec<usize>,
    repr: Repr,
}

impl Factor {
    fn order(&self) -> BigUint {
        let m = self.points.len();
        match &self.repr {
            Repr::Symmetric => factorial(m),
            Repr::Alternating => factorial(m) / BigUint::from(2u32),
            Repr::Chain(b) => b.order(),
        }
    }
}

/// `n!` as a big integer.
#[must_use]
pub fn factorial(n: usize) -> BigUint {
    // Product tree keeps the multiplications balanced (fast for n in the tens of thousands).
    fn prod(lo: usize, hi: usize) -> BigUint {
        if hi - lo <= 16 {
            let mut acc = BigUint::one();
            for k in lo..hi {
                acc *= BigUint::from(k);
            }
            return acc;
        }
        let mid = lo + (hi - lo) / 2;
        prod(lo, mid) * prod(mid, hi)
    }
    prod(1, n.max(1) + 1)
}

/// A permutation group on `0..degree`, given by generators and analysed once at construction.
///
/// See the [crate documentation](crate#how-permutation-groups-are-analysed) for the method: giants are recognised structurally, the
/// rest goes through deterministic Schreier-Sims.
#[derive(Clone, Debug)]
pub struct PermGroup {
    degree: usize,
    generators: Vec<Perm>,
    factors: Vec<Factor>,
    /// `factor_of[x]` is the factor acting on `x`, or `usize::MAX` for points the group fixes.
    factor_of: Vec<usize>,
    /// `local[x]` is the index of `x` in its factor's `points`.
    local: Vec<usize>,
    orbit_id: Vec<usize>,
    order: BigUint,
    config: GroupConfig,
}

struct Dsu(Vec<usize>);
impl Dsu {
    fn new(n: usize) -> Self {
        Self((0..n).collect())
    }
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut y = x;
        while self.0[y] != r {
            let next = self.0[y];
            self.0[y] = r;
            y = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.0[hi] = lo;
        true
    }
}

impl PermGroup {
    /// The group generated by `generators`, all of degree `degree`.
    ///
    /// # Arguments
    /// * `degree` – number of points, `>= 1`.
    /// * `generators` – at least one permutation of degree `degree` (identities are allowed).
    ///
    /// # Errors
    /// [`Error::NoGenerators`] for an empty list (use [`PermGroup::trivial`]);
    /// [`Error::DegreeMismatch`] if a generator has another degree;
    /// [`Error::InvalidParam`] if `degree == 0`.
    ///
    /// # Complexity
    /// Orbits and classes: `O(n · g)`. A giant factor of degree `m`: `O(m · GIANT_TRIES)` at most.
    /// Other factors: deterministic Schreier-Sims, `O(m^5 + m^2 g)` worst case in time and
    /// `O(b · m^2)` memory for a base of length `b` (explicit transversals).
    ///
    /// # Example
    /// ```
    /// use claimlab_orbits::{Perm, PermGroup};
    /// let n = 1536;
    /// let t = Perm::from_cycles(n, &[vec![0, 1]]).unwrap();
    /// let c = Perm::from_cycles(n, &[(0..n).collect()]).unwrap();
    /// let g = PermGroup::new(n, vec![t, c]).unwrap();
    /// assert_eq!(g.order(), &claimlab_orbits::factorial(1536));
    /// ```
    pub fn new(degree: usize, generators: Vec<Perm>) -> Result<Self> {
        Self::with_config(degree, generators, GroupConfig::default())
    }

    /// [`PermGroup::new`] with explicit limits and giant-test settings.
    ///
    /// # Errors
    /// As [`PermGroup::new`], and [`Error::TooLarge`] when a Schreier-Sims factor exceeds the
    /// configured work or memory.
    pub fn with_config(degree: usize, generators: Vec<Perm>, config: GroupConfig) -> Result<Self> {
        if degree == 0 {
            return Err(Error::InvalidParam {
                name: "degree",
                value: "0".into(),
                reason: "a permutation group needs at least one point",
            });
        }
        if generators.is_empty() {
            return Err(Error::NoGenerators);
        }
        for g in &generators {
            if g.degree() != degree {
                return Err(Error::DegreeMismatch {
                    expected: degree,
                    found: g.degree(),
                });
            }
        }
        Self::analyse(degree, generators, config)
    }

    /// Parses generators written one per line in 1-based cycle notation (`(1,2,3)(4,5)`; blank
    /// lines and lines starting with `#` skipped) and builds their group. The degree is the
    /// largest point mentioned unless `degree` is given.
    ///
    /// # Errors
    /// [`Error::Parse`] (with the offset of the line's start added) for a bad line;
    /// [`Error::NoGenerators`] if there is no permutation; errors of [`PermGroup::new`].
    pub fn from_cycle_lines(text: &str, degree: Option<usize>) -> Result<Self> {
        let mut lines = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                lines.push((offset + (line.len() - line.trim_start().len()), t));
            }
            offset += line.len();
        }
        if lines.is_empty() {
            return Err(Error::NoGenerators);
        }
        let max_point = lines
            .iter()
            .flat_map(|(_, t)| {
                t.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|w| w.parse::<usize>().ok())
            })
            .max()
            .unwrap_or(1);
        let n = degree.unwrap_or(max_point.max(1));
        let mut gens = Vec::with_capacity(lines.len());
        for (off, t) in lines {
            let p = Perm::parse_cycles(t, n).map_err(|e| match e {
                Error::Parse {
                    what,
                    offset,
                    reason,
                } => Error::Parse {
                    what,
                    offset: offset + off,
                    reason,
                },
                other => other,
            })?;
            gens.push(p);
        }
        Self::new(n, gens)
    }

    /// The trivial group on `degree` points.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `degree == 0`.
    pub fn trivial(degree: usize) -> Result<Self> {
        if degree == 0 {
            return Err(Error::InvalidParam {
                name: "degree",
                value: "0".into(),
                reason: "a permutation group needs at least one point",
            });
        }
        Self::new(degree, vec![Perm::identity(degree)])
    }

    fn analyse(degree: usize, generators: Vec<Perm>, config: GroupConfig) -> Result<Self> {
        // Orbits.
        let mut dsu = Dsu::new(degree);
        for g in &generators {
            for x in 0..degree {
                dsu.union(x, g.image(x));
            }
        }
        let orbit_id: Vec<usize> = (0..degree).map(|x| dsu.find(x)).collect();
        // Classes of orbits joined by a generator.
        let mut cls = Dsu::new(degree);
        for g in &generators {
            let mut first = None;
            for (x, &ox) in orbit_id.iter().enumerate() {
                if g.image(x) != x {
                    match first {
                        None => first = Some(ox),
                        Some(f) => {
                            cls.union(f, ox);
                        }
                    }
                }
            }
        }
        let mut class_points: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (x, &ox) in orbit_id.iter().enumerate() {
            let moved = generators.iter().any(|g| g.image(x) != x);
            if moved {
                let c = cls.find(ox);
                class_points.entry(c).or_default().push(x);
            }
        }
        let mut factor_of = vec![usize::MAX; degree];
        let mut local = vec![usize::MAX; degree];
        let mut factors = Vec::new();
        for (_, points) in class_points {
            let fi = factors.len();
            for (k, &x) in points.iter().enumerate() {
                factor_of[x] = fi;
                local[x] = k;
            }
            let local_gens: Vec<Perm> = generators
                .iter()
                .filter(|g| points.iter().any(|&x| g.image(x) != x))
                .map(|g| restrict(g, &points, &local))
                .collect();
            let transitive = points.iter().all(|&x| orbit_id[x] == orbit_id[points[0]]);
            let repr = if transitive && points.len() >= GIANT_MIN_DEGREE {
                match giant_test(points.len(), &local_gens, &config) {
                    Some(true) => Repr::Symmetric,
                    Some(false) => Repr::Alternating,
                    None => {
                        Repr::Chain(Bsgs::new(points.len(), &local_gens, &[], config.limits())?)
                    }
                }
            } else {
                Repr::Chain(Bsgs::new(points.len(), &local_gens, &[], config.limits())?)
            };
            factors.push(Factor { points, repr });
        }
        let order = factors
            .iter()
            .fold(BigUint::one(), |acc, f| acc * f.order());
        Ok(Self {
            degree,
            generators,
            factors,
            factor_of,
            local,
            orbit_id,
            order,
            config,
        })
    }

    /// Number of points.
    #[must_use]
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The generators the group was built from.
    #[must_use]
    pub fn generators(&self) -> &[Perm] {
        &self.generators
    }

    /// The exact order.
    #[must_use]
    pub fn order(&self) -> &BigUint {
        &self.order
    }

    /// The direct factors found by the analysis, with their kind and order: tells how each part of
    /// the group was handled (recognised giant or Schreier-Sims).
    #[must_use]
    pub fn factors(&self) -> Vec<FactorSummary> {
        self.factors
            .iter()
            .map(|f| FactorSummary {
                points: f.points.clone(),
                kind: match f.repr {
                    Repr::Symmetric => FactorKind::Symmetric,
                    Repr::Alternating => FactorKind::Alternating,
                    Repr::Chain(_) => FactorKind::StabiliserChain,
                },
                order: f.order(),
            })
            .collect()
    }

    /// Whether `g` is an element of the group.
    ///
    /// # Errors
    /// [`Error::DegreeMismatch`] if `g` has another degree.
    ///
    /// # Complexity
    /// `O(n)` for giant factors, `O(b · m)` for a Schreier-Sims factor with base length `b`.
    pub fn contains(&self, g: &Perm) -> Result<bool> {
        if g.degree() != self.degree {
            return Err(Error::DegreeMismatch {
                expected: self.degree,
                found: g.degree(),
            });
        }
        for x in 0..self.degree {
            if self.factor_of[g.image(x)] != self.factor_of[x] {
                return Ok(false);
            }
            if self.factor_of[x] == usize::MAX && g.image(x) != x {
                return Ok(false);
            }
        }
        for f in &self.factors {
            let ok = match &f.repr {
                Repr::Symmetric => true,
                Repr::Alternating => restrict(g, &f.points, &self.local).is_even(),
                Repr::Chain(b) => b.contains(&restrict(g, &f.points, &self.local)),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The orbits, each ascending, ordered by their smallest point (fixed points included).
    #[must_use]
    pub fn orbits(&self) -> Vec<Vec<usize>> {
        let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for x in 0..self.degree {
            by_root.entry(self.orbit_id[x]).or_default().push(x);
        }
        by_root.into_values().collect()
    }

    /// The orbit of `point`, ascending.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `point >= degree`.
    pub fn orbit(&self, point: usize) -> Result<Vec<usize>> {
        self.check_point(point)?;
        let r = self.orbit_id[point];
        Ok((0..self.degree)
            .filter(|&x| self.orbit_id[x] == r)
            .collect())
    }

    fn check_point(&self, point: usize) -> Result<()> {
        if point >= self.degree {
            return Err(Error::InvalidParam {
                name: "point",
                value: point.to_string(),
                reason: "point must be below the degree",
            });
        }
        Ok(())
    }

    /// The stabiliser of `point`, as a new group (order `|G| / |orbit(point)|`).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `point >= degree`; [`Error::TooLarge`] if the base change
    /// exceeds the configured Schreier-Sims limits.
    ///
    /// # Complexity
    /// Giant factor: `O(m)`. Schreier-Sims factor: one Schreier-Sims run with `point` first in
    /// the base.
    pub fn stabiliser(&self, point: usize) -> Result<Self> {
        self.check_point(point)?;
        let fi = self.factor_of[point];
        if fi == usize::MAX {
            return Ok(self.clone());
        }
        let mut factors: Vec<Factor> = Vec::with_capacity(self.factors.len());
        for (k, f) in self.factors.iter().enumerate() {
            if k != fi {
                factors.push(f.clone());
                continue;
            }
            match &f.repr {
                Repr::Symmetric | Repr::Alternating => {
                    let rest: Vec<usize> =
                        f.points.iter().copied().filter(|&x| x != point).collect();
                    let alt = matches!(f.repr, Repr::Alternating);
                    // S_1 and A_2 are trivial: drop the factor.
                    if rest.len() >= if alt { 3 } else { 2 } {
                        let repr = if alt {
                            Repr::Alternating
                        } else {
                            Repr::Symmetric
                        };
                        factors.push(Factor { points: rest, repr });
                    }
                }
                Repr::Chain(b) => {
                    let lp = self.local[point];
                    let with_p =
                        Bsgs::new(b.n, &b.strong_generators(), &[lp], self.config.limits())?;
                    let gens = with_p.level_generators(1);
                    if !gens.is_empty() {
                        let sub = Bsgs::new(b.n, &gens, &[], self.config.limits())?;
                        factors.push(Factor {
                            points: f.points.clone(),
                            repr: Repr::Chain(sub),
                        });
                    }
                }
            }
        }
        Ok(Self::from_factors(self.degree, factors, self.config))
    }

    /// Rebuilds the bookkeeping from a list of factors (generators: the strong generators).
    fn from_factors(degree: usize, factors: Vec<Factor>, config: GroupConfig) -> Self {
        let mut factor_of = vec![usize::MAX; degree];
        let mut local = vec![usize::MAX; degree];
        for (fi, f) in factors.iter().enumerate() {
            for (k, &x) in f.points.iter().enumerate() {
                factor_of[x] = fi;
                local[x] = k;
            }
        }
        let mut g = Self {
            degree,
            generators: Vec::new(),
            factors,
            factor_of,
            local,
            orbit_id: Vec::new(),
            order: BigUint::one(),
            config,
        };
        let mut gens = g.generators_of_factors();
        if gens.is_empty() {
            gens.push(Perm::identity(degree));
        }
        let mut dsu = Dsu::new(degree);
        for p in &gens {
            for x in 0..degree {
                dsu.union(x, p.image(x));
            }
        }
        g.orbit_id = (0..degree).map(|x| dsu.find(x)).collect();
        g.order = g
            .factors
            .iter()
            .fold(BigUint::one(), |acc, f| acc * f.order());
        g.generators = gens;
        g
    }

    /// Small generating sets of the factors, lifted to the full degree.
    fn generators_of_factors(&self) -> Vec<Perm> {
        let mut out = Vec::new();
        for f in &self.factors {
            let pts = &f.points;
            let m = pts.len();
            match &f.repr {
                Repr::Symmetric => {
                    out.push(lift_cycle(self.degree, &[pts[0], pts[1]]));
                    if m > 2 {
                        out.push(lift_cycle(self.degree, pts));
                    }
                }
                Repr::Alternating => {
                    out.push(lift_cycle(self.degree, &pts[0..3]));
                    if m > 3 {
                        // (1..m) is even for odd m; otherwise (2..m) is.
                        let cyc = if m % 2 == 1 { &pts[..] } else { &pts[1..] };
                        out.push(lift_cycle(self.degree, cyc));
                    }
                }
                Repr::Chain(b) => {
                    out.extend(
                        b.strong_generators()
                            .iter()
                            .map(|g| lift(g, pts, self.degree)),
                    );
                }
            }
        }
        out
    }

    /// A base: the concatenation of the factors' bases (global points).
    #[must_use]
    pub fn base(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for f in &self.factors {
            let m = f.points.len();
            match &f.repr {
                Repr::Symmetric => out.extend_from_slice(&f.points[..m - 1]),
                Repr::Alternating => out.extend_from_slice(&f.points[..m - 2]),
                Repr::Chain(b) => out.extend(b.base().into_iter().map(|x| f.points[x])),
            }
        }
        out
    }

    /// A strong generating set relative to [`PermGroup::base`]: for `S_m` on `b_1..b_m` the
    /// transpositions `(b_i, b_(i+1))`, for `A_m` the 3-cycles `(b_i, b_(i+1), b_(i+2))`, and the
    /// Schreier-Sims strong generators elsewhere.
    ///
    /// # Complexity
    /// `O(n)` memory per generator: about `n · (n - 1)` words for `S_n`.
    #[must_use]
    pub fn strong_generators(&self) -> Vec<Perm> {
        let mut out = Vec::new();
        for f in &self.factors {
            let pts = &f.points;
            match &f.repr {
                Repr::Symmetric => {
                    for w in pts.windows(2) {
                        out.push(lift_cycle(self.degree, w));
                    }
                }
                Repr::Alternating => {
                    for w in pts.windows(3) {
                        out.push(lift_cycle(self.degree, w));
                    }
                }
                Repr::Chain(b) => {
                    out.extend(
                        b.strong_generators()
                            .iter()
                            .map(|g| lift(g, pts, self.degree)),
                    );
                }
            }
        }
        out
    }

    /// A uniformly distributed random element (exact: independent per factor; a shuffle for
    /// giants, random transversal elements for Schreier-Sims factors).
    pub fn uniform_element<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Perm {
        let mut images: Vec<u32> = (0..self.degree as u32).collect();
        for f in &self.factors {
            let pts = &f.points;
            let m = pts.len();
            match &f.repr {
                Repr::Symmetric | Repr::Alternating => {
                    let mut perm: Vec<usize> = (0..m).collect();
                    for i in (1..m).rev() {
                        let j = rng.random_range(0..=i);
                        perm.swap(i, j);
                    }
                    if matches!(f.repr, Repr::Alternating) {
                        let p =
                            Perm::from_images_unchecked(perm.iter().map(|&x| x as u32).collect());
                        if !p.is_even() {
                            perm.swap(0, 1);
                        }
                    }
                    for (k, &x) in perm.iter().enumerate() {
                        images[pts[k]] = pts[x] as u32;
                    }
                }
                Repr::Chain(b) => {
                    let g = b.uniform_element(rng);
                    for (k, &x) in g.images().iter().enumerate() {
                        images[pts[k]] = pts[x as usize] as u32;
                    }
                }
            }
        }
        Perm::from_images_unchecked(images)
    }

    /// All elements, for small groups (order at most `limit`), in a fixed order.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the order exceeds `limit`.
    pub fn elements(&self, limit: u64) -> Result<Vec<Perm>> {
        if self.order > BigUint::from(limit) {
            return Err(Error::TooLarge {
                what: "group enumeration",
                size: self.order.to_string(),
                limit: limit.to_string(),
            });
        }
        let mut all = vec![Perm::identity(self.degree)];
        for f in &self.factors {
            let elems = factor_elements(f, self.degree);
            let mut next = Vec::with_capacity(all.len() * elems.len());
            for a in &all {
                for e in &elems {
                    next.push(a.mul(e));
                }
            }
            all = next;
        }
        Ok(all)
    }
}

fn factor_elements(f: &Factor, degree: usize) -> Vec<Perm> {
    let pts = &f.points;
    let m = pts.len();
    let mut out = Vec::new();
    match &f.repr {
        Repr::Symmetric | Repr::Alternating => {
            // Heap's algorithm over local permutations.
            let mut a: Vec<usize> = (0..m).collect();
            let mut c = vec![0usize; m];
            let alt = matches!(f.repr, Repr::Alternating);
            let emit = |a: &[usize], out: &mut Vec<Perm>| {
                let lp = Perm::from_images_unchecked(a.iter().map(|&x| x as u32).collect());
                if !alt || lp.is_even() {
                    out.push(lift(&lp, pts, degree));
                }
            };
            emit(&a, &mut out);
            let mut i = 0;
            while i < m {
                if c[i] < i {
                    if i % 2 == 0 {
                        a.swap(0, i);
                    } else {
                        a.swap(c[i], i);
                    }
                    emit(&a, &mut out);
                    c[i] += 1;
                    i = 0;
                } else {
                    c[i] = 0;
                    i += 1;
                }
            }
        }
        Repr::Chain(b) => b.for_each_element(&mut |g| out.push(lift(g, pts, degree))),
    }
    out
}

/// The restriction of `g` to `points` (which it preserves), relabelled to `0..points.len()`.
fn restrict(g: &Perm, points: &[usize], local: &[usize]) -> Perm {
    Perm::from_images_unchecked(points.iter().map(|&x| local[g.image(x)] as u32).collect())
}

/// A local permutation of `points` extended by the identity to `degree` points.
fn lift(g: &Perm, points: &[usize], degree: usize) -> Perm {
    let mut images: Vec<u32> = (0..degree as u32).collect();
    for (k, &x) in g.images().iter().enumerate() {
        images[points[k]] = points[x as usize] as u32;
    }
    Perm::from_images_unchecked(images)
}

/// The cycle `(c_0, c_1, ..., c_k)` on `degree` points (distinct points assumed).
fn lift_cycle(degree: usize, cycle: &[usize]) -> Perm {
    let mut images: Vec<u32> = (0..degree as u32).collect();
    for k in 0..cycle.len() {
        images[cycle[k]] = cycle[(k + 1) % cycle.len()] as u32;
    }
    Perm::from_images_unchecked(images)
}

fn is_prime(p: usize) -> bool {
    p >= 2
        && (2..)
            .take_while(|d| d * d <= p)
            .all(|d| !p.is_multiple_of(d))
}

/// Jordan's test on a transitive group of degree `m >= 8` given by local generators.
/// `Some(true)`: symmetric; `Some(false)`: alternating; `None`: not shown to be a giant.
fn giant_test(m: usize, gens: &[Perm], config: &GroupConfig) -> Option<bool> {
    let has_big_prime_cycle = |x: &Perm| -> bool {
        let ct = x.cycle_type();
        (m / 2 + 1..=m.saturating_sub(3)).any(|p| ct[p] > 0 && is_prime(p))
    };
    let odd = gens.iter().any(|g| !g.is_even());
    if gens.iter().any(has_big_prime_cycle) {
        return Some(odd);
    }
    let mut pr = ProductReplacement::from_generators(gens, config.giant_seed);
    for _ in 0..config.giant_tries {
        let x = pr.next_element();
        if has_big_prime_cycle(&x) {
            return Some(odd);
        }
    }
    None
}

/// Seeded random elements by the product replacement algorithm (Celler, Leedham-Green, Murray,
/// Niemeyer, O'Brien, *Comm. Algebra* 23 (1995) 4931–4948, with the "rattle" accumulator of
/// Leedham-Green): cheap, nearly uniform after a burn-in, no stabiliser chain needed.
///
/// # Example
/// ```
/// use claimlab_orbits::{Perm, PermGroup, ProductReplacement};
/// let g = PermGroup::new(5, vec![Perm::parse_cycles("(1,2,3,4,5)", 5).unwrap()]).unwrap();
/// let mut pr = ProductReplacement::new(&g, 7);
/// assert!(g.contains(&pr.next_element()).unwrap());
/// ```
#[derive(Clone, Debug)]
pub struct ProductReplacement {
    state: Vec<Perm>,
    acc: Perm,
    rng: Xoshiro256PlusPlus,
}

impl ProductReplacement {
    /// Burn-in steps after seeding.
    const BURN_IN: usize = 60;
    /// Minimum length of the state.
    const MIN_STATE: usize = 10;

    /// Starts from the group's generators with a seed; runs the burn-in.
    #[must_use]
    pub fn new(group: &PermGroup, seed: u64) -> Self {
        Self::from_generators(group.generators(), seed)
    }

    fn from_generators(gens: &[Perm], seed: u64) -> Self {
        let r = gens.len().max(Self::MIN_STATE);
        let state: Vec<Perm> = (0..r).map(|i| gens[i % gens.len()].clone()).collect();
        let n = gens[0].degree();
        let mut pr = Self {
            state,
            acc: Perm::identity(n),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        };
        for _ in 0..Self::BURN_IN {
            pr.next_element();
        }
        pr
    }

    /// The next random element.
    pub fn next_element(&mut self) -> Perm {
        let r = self.state.len();
        let i = self.rng.random_range(0..r);
        let mut j = self.rng.random_range(0..r - 1);
        if j >= i {
            j += 1;
        }
        let other = if self.rng.random_bool(0.5) {
            self.state[j].clone()
        } else {
            self.state[j].inverse()
        };
        if self.rng.random_bool(0.5) {
            self.state[i] = self.state[i].mul(&other);
        } else {
            self.state[i] = other.mul(&self.state[i]);
        }
        self.acc = self.acc.mul(&self.state[i]);
        self.acc.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};

    use claimlab_testkit::rand::RngExt;

    use super::*;
    use crate::named::*;

    fn p(s: &str, n: usize) -> Perm {
        Perm::parse_cycles(s, n).unwrap()
    }

    fn big(s: &str) -> BigUint {
        s.parse().unwrap()
    }

    /// Brute-force closure: every element, by breadth-first search over right multiplication.
    fn closure(n: usize, gens: &[Perm]) -> HashSet<Perm> {
        let mut seen = HashSet::new();
        let id = Perm::identity(n);
        seen.insert(id.clone());
        let mut q = VecDeque::from([id]);
        while let Some(x) = q.pop_front() {
            for g in gens {
                let y = x.mul(g);
                if seen.insert(y.clone()) {
                    q.push_back(y);
                }
            }
        }
        seen
    }

    fn all_perms(n: usize) -> Vec<Perm> {
        symmetric_group(n).unwrap().elements(10_000).unwrap()
    }

    #[test]
    fn known_small_orders() {
        for n in 1..=9 {
            assert_eq!(symmetric_group(n).unwrap().order(), &factorial(n), "S_{n}");
            let a = alternating_group(n).unwrap();
            let expect = if n < 2 {
                BigUint::one()
            } else {
                factorial(n) / BigUint::from(2u32)
            };
            assert_eq!(a.order(), &expect, "A_{n}");
            assert_eq!(cyclic_group(n).unwrap().order(), &BigUint::from(n), "C_{n}");
        }
        for n in 3..=12 {
            assert_eq!(
                dihedral_group(n).unwrap().order(),
                &BigUint::from(2 * n),
                "D_{n}"
            );
        }
    }

    #[test]
    fn mathieu_and_rubik() {
        let g11 = vec![
            p("(1,2,3,4,5,6,7,8,9,10,11)", 11),
            p("(3,7,11,8)(4,10,5,6)", 11),
        ];
        let m11 = PermGroup::new(11, g11.clone()).unwrap();
        assert_eq!(m11.order(), &BigUint::from(7920u32));
        assert_eq!(m11.factors()[0].kind, FactorKind::StabiliserChain);
        let mut g12: Vec<Perm> = g11
            .iter()
            .map(|g| {
                let mut im: Vec<usize> = g.images().iter().map(|&x| x as usize).collect();
                im.push(11);
                Perm::from_images(im).unwrap()
            })
            .collect();
        g12.push(p("(1,12)(2,11)(3,6)(4,8)(5,9)(7,10)", 12));
        let m12 = PermGroup::new(12, g12).unwrap();
        assert_eq!(m12.order(), &BigUint::from(95040u32));
        // Point stabiliser of M12 is M11 (order 7920); of M11, M10 (720).
        assert_eq!(m12.stabiliser(11).unwrap().order(), &BigUint::from(7920u32));
        assert_eq!(m11.stabiliser(0).unwrap().order(), &BigUint::from(720u32));

        let rubik = [
            "(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)",
            "(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)",
            "(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)",
            "(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)",
            "(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)",
            "(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)",
        ];
        let gens: Vec<Perm> = rubik.iter().map(|s| p(s, 48)).collect();
        let cube = PermGroup::new(48, gens.clone()).unwrap();
        assert_eq!(cube.order(), &big("43252003274489856000"));
        // A single quarter turn is in the group, a single edge flip is not.
        assert!(cube.contains(&gens[0]).unwrap());
        assert!(!cube.contains(&p("(2,34)", 48)).unwrap());
        let orbits = cube.orbits();
        assert_eq!(orbits.iter().filter(|o| o.len() == 24).count(), 2);
    }

    #[test]
    fn brute_force_small_degrees() {
        let mut rng = claimlab_testkit::rng(11);
        for trial in 0..60 {
            let n = rng.random_range(1..=7usize);
            let k = rng.random_range(1..=3usize);
            let gens: Vec<Perm> = (0..k)
                .map(|_| {
                    let mut im: Vec<usize> = (0..n).collect();
                    // A random permutation with a random number of swaps (often small groups).
                    for _ in 0..rng.random_range(0..3usize) {
                        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                        im.swap(a, b);
                    }
                    Perm::from_images(im).unwrap()
                })
                .collect();
            let g = PermGroup::new(n, gens.clone()).unwrap();
            let elems = closure(n, &gens);
            assert_eq!(
                g.order(),
                &BigUint::from(elems.len()),
                "trial {trial}: {gens:?}"
            );
            for x in all_perms(n) {
                assert_eq!(
                    g.contains(&x).unwrap(),
                    elems.contains(&x),
                    "trial {trial}: {x}"
                );
            }
            let listed: HashSet<Perm> = g.elements(10_000).unwrap().into_iter().collect();
            assert_eq!(listed, elems);
            for pt in 0..n {
                let orb: HashSet<usize> = elems.iter().map(|e| e.image(pt)).collect();
                let mut orb: Vec<usize> = orb.into_iter().collect();
                orb.sort_unstable();
                assert_eq!(g.orbit(pt).unwrap(), orb);
                let stab = g.stabiliser(pt).unwrap();
                let brute = elems.iter().filter(|e| e.image(pt) == pt).count();
                assert_eq!(
                    stab.order(),
                    &BigUint::from(brute),
                    "trial {trial} point {pt}"
                );
                for e in &elems {
                    assert_eq!(stab.contains(e).unwrap(), e.image(pt) == pt);
                }
            }
            // Base and strong generators: the strong generators generate the group, and only
            // the identity fixes the whole base.
            let sgs = g.strong_generators();
            if !sgs.is_empty() {
                assert_eq!(closure(n, &sgs), elems);
            }
            let base = g.base();
            assert_eq!(
                elems
                    .iter()
                    .filter(|e| base.iter().all(|&b| e.image(b) == b))
                    .count(),
                1
            );
        }
    }

    #[test]
    fn giants_recognised_and_checked_by_brute_force() {
        // Degree 8: giant test path against brute force over all 40320 permutations.
        let s8 = symmetric_group(8).unwrap();
        assert_eq!(s8.factors()[0].kind, FactorKind::Symmetric);
        let a8 = alternating_group(8).unwrap();
        assert_eq!(a8.factors()[0].kind, FactorKind::Alternating);
        let elems = s8.elements(50_000).unwrap();
        assert_eq!(elems.len(), 40320);
        assert_eq!(
            elems.iter().filter(|e| a8.contains(e).unwrap()).count(),
            20160
        );
        assert_eq!(a8.elements(50_000).unwrap().len(), 20160);
        // AGL(1,8)-like groups of degree 8 are not giants: PGL(2,7) on 8 points has order 336.
        let pgl = PermGroup::new(
            8,
            vec![
                p("(1,2,3,4,5,6,7)", 8),
                p("(1,2,4)(3,6,5)", 8),
                p("(1,8)(2,7)(3,4)(5,6)", 8),
            ],
        )
        .unwrap();
        let brute = closure(8, pgl.generators());
        assert_eq!(pgl.order(), &BigUint::from(brute.len()));
        assert_eq!(pgl.factors()[0].kind, FactorKind::StabiliserChain);
    }

    #[test]
    fn degree_1536_direct_products() {
        let n = 1536;
        let s = symmetric_group(n).unwrap();
        assert_eq!(s.order(), &factorial(n));
        assert_eq!(s.factors()[0].kind, FactorKind::Symmetric);
        let st = s.stabiliser(17).unwrap();
        assert_eq!(st.order(), &factorial(n - 1));
        let mut rng = claimlab_testkit::rng(3);
        let x = s.uniform_element(&mut rng);
        assert!(s.contains(&x).unwrap());
        assert!(!st.contains(&x).unwrap() || x.image(17) == 17);

        // Six blocks of 256, each S_256 from a transposition and a 256-cycle, plus one A_9 block
        // is impossible to fit, so: blocks of 256 on all 1536 points.
        let mut gens = Vec::new();
        for b in 0..6 {
            let pts: Vec<usize> = (b * 256..(b + 1) * 256).collect();
            gens.push(Perm::from_cycles(n, &[vec![pts[0], pts[1]]]).unwrap());
            gens.push(Perm::from_cycles(n, &[pts]).unwrap());
        }
        let g = PermGroup::new(n, gens).unwrap();
        assert_eq!(g.order(), &factorial(256).pow(6));
        assert_eq!(g.orbits().len(), 6);
        assert_eq!(g.base().len(), 6 * 255);
        let y = g.uniform_element(&mut rng);
        assert!(g.contains(&y).unwrap());
        // A transposition across two blocks is not in the group.
        assert!(!g
            .contains(&Perm::from_cycles(n, &[vec![0, 300]]).unwrap())
            .unwrap());
        // Alternating of large degree.
        let a = alternating_group(1001).unwrap();
        assert_eq!(a.order(), &(factorial(1001) / BigUint::from(2u32)));
        assert!(!a
            .contains(&Perm::from_cycles(1001, &[vec![0, 1]]).unwrap())
            .unwrap());
        // MiniLM's hidden units: six layers of 1536 units, one symmetric group each, 9216 points.
        let n6 = 6 * 1536;
        let mut gens = Vec::new();
        for b in 0..6 {
            let pts: Vec<usize> = (b * 1536..(b + 1) * 1536).collect();
            gens.push(Perm::from_cycles(n6, &[vec![pts[5], pts[6]]]).unwrap());
            gens.push(Perm::from_cycles(n6, &[pts]).unwrap());
        }
        let t = std::time::Instant::now();
        let g6 = PermGroup::new(n6, gens).unwrap();
        assert_eq!(g6.order(), &factorial(1536).pow(6));
        assert!(g6.factors().iter().all(|f| f.kind == FactorKind::Symmetric));
        assert!(g6.contains(&g6.uniform_element(&mut rng)).unwrap());
        // Generous bound (measured: well under a second in release on the 2-core machine).
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
        // A large cyclic group is not a giant and goes through Schreier-Sims.
        let c = cyclic_group(n).unwrap();
        assert_eq!(c.order(), &BigUint::from(n));
        assert_eq!(c.factors()[0].kind, FactorKind::StabiliserChain);
    }

    /// A large imprimitive group is not a giant: Schreier-Sims runs into its work limit and says
    /// so instead of running for hours. About 30 s; run with
    /// `cargo test --release -p claimlab-orbits -- --ignored imprimitive`.
    #[test]
    #[ignore]
    fn large_imprimitive_group_hits_the_limit() {
        let n = 1536;
        // (1,5) and the n-cycle: 4 divides n, so the blocks {i, i+4, ...} are preserved.
        let g = PermGroup::new(
            n,
            vec![
                Perm::from_cycles(n, &[vec![0, 4]]).unwrap(),
                Perm::from_cycles(n, &[(0..n).collect()]).unwrap(),
            ],
        );
        assert!(matches!(g, Err(Error::TooLarge { .. })));
    }

    #[test]
    fn product_replacement_is_seeded_and_stays_in_group() {
        let g = dihedral_group(10).unwrap();
        let mut a = ProductReplacement::new(&g, 5);
        let mut b = ProductReplacement::new(&g, 5);
        let mut seen = HashSet::new();
        for _ in 0..400 {
            let x = a.next_element();
            assert_eq!(x, b.next_element());
            assert!(g.contains(&x).unwrap());
            seen.insert(x);
        }
        // 400 nearly uniform draws from 20 elements miss one with probability < 20·(19/20)^400.
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn repeated_stabilisers_down_to_the_trivial_group() {
        let m12 = PermGroup::from_cycle_lines(
            "(1,2,3,4,5,6,7,8,9,10,11)\n(3,7,11,8)(4,10,5,6)\n(1,12)(2,11)(3,6)(4,8)(5,9)(7,10)",
            None,
        )
        .unwrap();
        let mut rng = claimlab_testkit::rng(5);
        for (g, n) in [
            (m12, 12usize),
            (alternating_group(8).unwrap(), 8),
            (symmetric_group(9).unwrap(), 9),
        ] {
            let mut cur = g.clone();
            for pt in 0..n {
                let orbit = cur.orbit(pt).unwrap().len();
                let next = cur.stabiliser(pt).unwrap();
                assert_eq!(
                    next.order() * BigUint::from(orbit),
                    cur.order().clone(),
                    "point {pt}"
                );
                let x = next.uniform_element(&mut rng);
                assert!((0..=pt).all(|q| x.image(q) == q));
                assert!(g.contains(&x).unwrap() && next.contains(&x).unwrap());
                assert!(!next.base().is_empty() || next.order().is_one());
                cur = next;
            }
            assert!(cur.order().is_one());
            assert_eq!(cur.elements(1).unwrap().len(), 1);
        }
    }

    #[test]
    fn cycle_lines_and_limits() {
        let text = "# M11\n(1,2,3,4,5,6,7,8,9,10,11)\n\n  (3,7,11,8)(4,10,5,6)\n";
        let g = PermGroup::from_cycle_lines(text, None).unwrap();
        assert_eq!(
            (g.degree(), g.order().clone()),
            (11, BigUint::from(7920u32))
        );
        assert_eq!(
            PermGroup::from_cycle_lines(text, Some(12))
                .unwrap()
                .degree(),
            12
        );
        assert_eq!(
            PermGroup::from_cycle_lines("# nothing\n\n", None).unwrap_err(),
            Error::NoGenerators
        );
        // The offset points into the bad line: "(1,2" starts at byte 7, the error is at its end.
        match PermGroup::from_cycle_lines("(1,2,3)\n(1,2", None) {
            Err(Error::Parse { offset, .. }) => assert_eq!(offset, 12),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            PermGroup::from_cycle_lines("(1,5)", Some(3)),
            Err(Error::NotAPermutation { .. })
        ));
        // A non-giant factor with tight limits: Schreier-Sims gives up with TooLarge.
        let m11 = PermGroup::from_cycle_lines(text, None).unwrap();
        let tight = GroupConfig {
            max_schreier_sims_work: 500,
            ..GroupConfig::default()
        };
        assert!(matches!(
            PermGroup::with_config(11, m11.generators().to_vec(), tight),
            Err(Error::TooLarge { .. })
        ));
        // With no giant tries, S_9 goes through Schreier-Sims and still gets the right order.
        let s9 = symmetric_group(9).unwrap();
        let no_giant = GroupConfig {
            giant_tries: 0,
            ..GroupConfig::default()
        };
        let chain = PermGroup::with_config(9, s9.generators().to_vec(), no_giant).unwrap();
        assert_eq!(chain.factors()[0].kind, FactorKind::StabiliserChain);
        assert_eq!(chain.order(), &factorial(9));
    }

    #[test]
    fn error_paths() {
        assert_eq!(PermGroup::new(3, vec![]).unwrap_err(), Error::NoGenerators);
        assert_eq!(
            PermGroup::new(3, vec![Perm::identity(3), Perm::identity(4)]).unwrap_err(),
            Error::DegreeMismatch {
                expected: 3,
                found: 4
            }
        );
        assert!(matches!(
            PermGroup::new(0, vec![Perm::identity(0)]),
            Err(Error::InvalidParam { name: "degree", .. })
        ));
        assert!(matches!(
            PermGroup::trivial(0),
            Err(Error::InvalidParam { name: "degree", .. })
        ));
        let g = symmetric_group(4).unwrap();
        assert_eq!(
            g.contains(&Perm::identity(5)),
            Err(Error::DegreeMismatch {
                expected: 4,
                found: 5
            })
        );
        assert!(matches!(
            g.orbit(4),
            Err(Error::InvalidParam { name: "point", .. })
        ));
        assert!(matches!(
            g.stabiliser(9),
            Err(Error::InvalidParam { name: "point", .. })
        ));
        assert!(matches!(g.elements(23), Err(Error::TooLarge { .. })));
        assert!(matches!(
            dihedral_group(2),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        assert!(matches!(
            symmetric_group(0),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        let t = PermGroup::trivial(3).unwrap();
        assert_eq!(t.order(), &BigUint::one());
        assert_eq!(t.orbits().len(), 3);
        assert_eq!(t.elements(1).unwrap(), vec![Perm::identity(3)]);
    }
}
