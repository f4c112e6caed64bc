//! Compensated (Neumaier) summation for long reductions.

/// A running Neumaier sum: error independent of the number of terms, to first order.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    /// Adds one term.
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    pub(crate) fn value(self) -> f64 {
        self.sum + self.comp
    }
}

/// The compensated sum of an iterator.
pub(crate) fn sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = Neumaier::default();
    for x in xs {
        s.add(x);
    }
    s.value()
}
