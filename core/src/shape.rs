//! Tensor shapes of rank 1 to 3: every tensor of the objective is (N), (N, T)
//! or (N, T, V), and a backend sees them as rows over the last axis.

/// A shape of rank 1..=3, stored outermost first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Shape {
    dims: [usize; 3],
    rank: u8,
}

impl Shape {
    pub const fn d1(a: usize) -> Self {
        Shape { dims: [a, 1, 1], rank: 1 }
    }
    pub const fn d2(a: usize, b: usize) -> Self {
        Shape { dims: [a, b, 1], rank: 2 }
    }
    pub const fn d3(a: usize, b: usize, c: usize) -> Self {
        Shape { dims: [a, b, c], rank: 3 }
    }
    pub fn rank(&self) -> usize {
        self.rank as usize
    }
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// Length of the last axis (the one row reductions run over).
    pub fn last(&self) -> usize {
        self.dims[self.rank as usize - 1]
    }
    /// Number of rows: everything but the last axis.
    pub fn rows(&self) -> usize {
        self.dims()[..self.rank() - 1].iter().product()
    }
    /// The shape with the last axis removed (a rank-1 shape becomes `[1]`).
    pub fn without_last(&self) -> Shape {
        match self.rank {
            1 => Shape::d1(1),
            2 => Shape::d1(self.dims[0]),
            _ => Shape::d2(self.dims[0], self.dims[1]),
        }
    }
    /// The shape with a last axis of length `c` appended.
    pub fn with_last(&self, c: usize) -> Option<Shape> {
        match self.rank {
            1 => Some(Shape::d2(self.dims[0], c)),
            2 => Some(Shape::d3(self.dims[0], self.dims[1], c)),
            _ => None,
        }
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "(")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, ")")
    }
}

/// How one operand of an elementwise op maps onto the result: the
/// broadcasting rule of [`crate::Tensor::binary`], shared by every backend.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Broadcast {
    /// The operand has the result's shape.
    Full,
    /// One value per row (the result's shape without its last axis).
    Row,
    /// A single value.
    Scalar,
}

impl Shape {
    /// The result shape of several operands: the one with most elements
    /// (the higher rank on a tie, the first one on a full tie).
    pub fn broadcast(shapes: &[Shape]) -> Shape {
        let mut best = shapes[0];
        for s in shapes {
            if s.numel() > best.numel() || (s.numel() == best.numel() && s.rank() > best.rank()) {
                best = *s;
            }
        }
        best
    }

    /// How an operand of this shape maps onto `out`; `field` names it in the error.
    pub fn broadcast_to(self, out: Shape, field: &'static str) -> crate::Result<Broadcast> {
        if self == out {
            Ok(Broadcast::Full)
        } else if self.numel() == 1 {
            Ok(Broadcast::Scalar)
        } else if out.rank() > 1 && self == out.without_last() {
            Ok(Broadcast::Row)
        } else {
            Err(crate::Error::Shape { field, expected: out, got: self })
        }
    }
}
