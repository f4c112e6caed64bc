//! Named groups and their products, as written on the command line: `S4 x C3`, `S2 wr S3`,
//! `(D5 x C2) wr A4`.
//!
//! Grammar (`wr` binds tighter than `x`, both associate to the left):
//!
//! ```text
//! expr  := term (('x' | '×' | '*') term)*
//! term  := atom (('wr' | '≀') atom)*
//! atom  := ('S' | 'A' | 'C' | 'D') ['_'] NUMBER | '(' expr ')'
//! ```
//!
//! `S_n`, `A_n`, `C_n`, `D_n` act naturally on `n` points (`D_n` of order `2n` on the n-gon's
//! vertices); `G x H` acts on the disjoint union; `G wr H` is the imprimitive wreath product
//! (copies of `G`'s points permuted by `H`, GAP's `WreathProduct(G, H)`).

use crate::cycle_index::CycleIndex;
use crate::error::{Error, Result};
use crate::group::PermGroup;
use crate::named::{alternating_group, cyclic_group, dihedral_group, symmetric_group};
use crate::perm::Perm;

/// A parsed group expression.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupExpr {
    /// `S_n`.
    Symmetric(usize),
    /// `A_n`.
    Alternating(usize),
    /// `C_n`.
    Cyclic(usize),
    /// `D_n` (order `2n`).
    Dihedral(usize),
    /// `G x H` on the disjoint union.
    Product(Box<GroupExpr>, Box<GroupExpr>),
    /// `G wr H`, `G` the base group, `H` the top group.
    Wreath(Box<GroupExpr>, Box<GroupExpr>),
}

impl GroupExpr {
    /// Parses an expression such as `S4 x C3` or `S2 wr S3`.
    ///
    /// # Errors
    /// [`Error::Parse`] with the byte offset of the problem; [`Error::InvalidParam`] for a
    /// degree of 0 (or below 3 for `D_n`).
    pub fn parse(text: &str) -> Result<Self> {
        let mut p = Parser { s: text, i: 0 };
        let e = p.expr()?;
        p.ws();
        if p.i != text.len() {
            return Err(p.err("unexpected trailing input"));
        }
        Ok(e)
    }

    /// The number of points acted on.
    #[must_use]
    pub fn degree(&self) -> usize {
        match self {
            Self::Symmetric(n) | Self::Alternating(n) | Self::Cyclic(n) | Self::Dihedral(n) => *n,
            Self::Product(a, b) => a.degree() + b.degree(),
            Self::Wreath(a, b) => a.degree() * b.degree(),
        }
    }

    /// The cycle index, by the closed forms and Pólya's product and wreath rules.
    ///
    /// # Errors
    /// As the [`CycleIndex`] constructors ([`Error::TooLarge`] for huge symmetric factors).
    pub fn cycle_index(&self) -> Result<CycleIndex> {
        match self {
            Self::Symmetric(n) => CycleIndex::symmetric(*n),
            Self::Alternating(n) => CycleIndex::alternating(*n),
            Self::Cyclic(n) => CycleIndex::cyclic(*n),
            Self::Dihedral(n) => CycleIndex::dihedral(*n),
            Self::Product(a, b) => a.cycle_index()?.direct_product(&b.cycle_index()?),
            Self::Wreath(a, b) => a.cycle_index()?.wreath_product(&b.cycle_index()?),
        }
    }

    /// The permutation group itself, from generators.
    ///
    /// # Errors
    /// As the named-group constructors.
    pub fn perm_group(&self) -> Result<PermGroup> {
        match self {
            Self::Symmetric(n) => symmetric_group(*n),
            Self::Alternating(n) => alternating_group(*n),
            Self::Cyclic(n) => cyclic_group(*n),
            Self::Dihedral(n) => dihedral_group(*n),
            Self::Product(a, b) => direct_product(&a.perm_group()?, &b.perm_group()?),
            Self::Wreath(a, b) => wreath_product(&a.perm_group()?, &b.perm_group()?),
        }
    }
}

/// `G × H` acting on the disjoint union (`G` on `0..m`, `H` on `m..m+n`).
///
/// # Errors
/// Never in practice (the generators are valid by construction); the `Result` is that of
/// [`PermGroup::new`].
pub fn direct_product(g: &PermGroup, h: &PermGroup) -> Result<PermGroup> {
    let (m, n) = (g.degree(), h.degree());
    let mut gens = Vec::new();
    for x in g.generators() {
        let im: Vec<usize> = (0..m).map(|i| x.image(i)).chain(m..m + n).collect();
        gens.push(Perm::from_images(im)?);
    }
    for y in h.generators() {
        let im: Vec<usize> = (0..m).chain((0..n).map(|i| m + y.image(i))).collect();
        gens.push(Perm::from_images(im)?);
    }
    PermGroup::new(m + n, gens)
}

/// The imprimitive wreath product `G ≀ H`: point `(y, x)` is `y·m + x`, `G` acts on `x` in
/// each block, `H` permutes the blocks. Generators: those of `G` on the first block of each
/// orbit of `H`, and those of `H` moving whole blocks.
///
/// # Errors
/// As [`direct_product`].
pub fn wreath_product(g: &PermGroup, h: &PermGroup) -> Result<PermGroup> {
    let (m, d) = (g.degree(), h.degree());
    let mut gens = Vec::new();
    for orbit in h.orbits() {
        let y = orbit[0];
        for x in g.generators() {
            let im: Vec<usize> = (0..m * d)
                .map(|p| {
                    if p / m == y {
                        y * m + x.image(p % m)
                    } else {
                        p
                    }
                })
                .collect();
            gens.push(Perm::from_images(im)?);
        }
    }
    for t in h.generators() {
        let im: Vec<usize> = (0..m * d).map(|p| t.image(p / m) * m + p % m).collect();
        gens.push(Perm::from_images(im)?);
    }
    PermGroup::new(m * d, gens)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> Error {
        Error::Parse {
            what: "group expression",
            offset: self.i,
            reason: reason.to_string(),
        }
    }
    fn ws(&mut self) {
        while let Some(c) = self.s[self.i..].chars().next() {
            if c.is_whitespace() {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok) {
            // `x` must not swallow the start of a longer word.
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Result<GroupExpr> {
        let mut e = self.term()?;
        while self.eat("x") || self.eat("×") || self.eat("*") {
            let r = self.term()?;
            e = GroupExpr::Product(Box::new(e), Box::new(r));
        }
        Ok(e)
    }
    fn term(&mut self) -> Result<GroupExpr> {
        let mut e = self.atom()?;
        while self.eat("wr") || self.eat("≀") {
            let r = self.atom()?;
            e = GroupExpr::Wreath(Box::new(e), Box::new(r));
        }
        Ok(e)
    }
    fn atom(&mut self) -> Result<GroupExpr> {
        self.ws();
        if self.eat("(") {
            let e = self.expr()?;
            if !self.eat(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(e);
        }
        let Some(c) = self.s[self.i..].chars().next() else {
            return Err(self.err("expected a group name"));
        };
        if !matches!(c, 'S' | 'A' | 'C' | 'D') {
            return Err(self.err("expected S, A, C, D or '('"));
        }
        self.i += 1;
        if self.s[self.i..].starts_with('_') {
            self.i += 1;
        }
        let start = self.i;
        while self.s[self.i..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected the degree after the group name"));
        }
        let n: usize = self.s[start..self.i]
            .parse()
            .map_err(|_| self.err("degree too large"))?;
        let min = if c == 'D' { 3 } else { 1 };
        if n < min {
            return Err(Error::InvalidParam {
                name: "degree",
                value: format!("{c}{n}"),
                reason: "S_n, A_n, C_n need n >= 1 and D_n needs n >= 3",
            });
        }
        Ok(match c {
            'S' => GroupExpr::Symmetric(n),
            'A' => GroupExpr::Alternating(n),
            'C' => GroupExpr::Cyclic(n),
            _ => GroupExpr::Dihedral(n),
        })
    }
}
