//! `Knob`: how one config value is read from a TOML file or a flag's text
//! and written back, so that every section reads and writes values alike and
//! every error says what was expected.

use std::fmt::Write as _;

/// Where a value comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Toml(&'a toml::Value),
    Flag(&'a str),
}

/// A config value type.
pub trait Knob: Sized {
    /// What a valid value looks like, for error messages.
    fn expected() -> String;
    fn from_toml(v: &toml::Value) -> Option<Self>;
    fn from_flag(s: &str) -> Option<Self>;
    /// The TOML value; `None` for an unset optional knob.
    fn to_toml(&self) -> Option<toml::Value>;

    /// Reads `src`; the error says what was expected and what was given.
    fn read(src: Source<'_>) -> Result<Self, String> {
        let got = match src {
            Source::Toml(v) => Self::from_toml(v).ok_or_else(|| v.to_string()),
            Source::Flag(s) => Self::from_flag(s.trim()).ok_or_else(|| s.to_string()),
        };
        got.map_err(|got| format!("expected {}, got `{got}`", Self::expected()))
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Knob for $t {
            fn expected() -> String {
                format!("an integer in 0..={}", <$t>::MAX)
            }
            fn from_toml(v: &toml::Value) -> Option<Self> {
                v.as_integer().and_then(|i| <$t>::try_from(i).ok())
            }
            fn from_flag(s: &str) -> Option<Self> {
                s.parse().ok()
            }
            fn to_toml(&self) -> Option<toml::Value> {
                // Values above i64::MAX are refused on reading, so this
                // conversion only fails for a value set in code.
                Some(toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
unsigned!(u32, u64, usize);

impl Knob for f64 {
    fn expected() -> String {
        "a number".into()
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        match v {
            toml::Value::Float(x) => Some(*x),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
    fn from_flag(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Float(*self))
    }
}

impl Knob for bool {
    fn expected() -> String {
        "true or false".into()
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        v.as_bool()
    }
    fn from_flag(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

impl Knob for String {
    fn expected() -> String {
        "a string".into()
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        v.as_str().map(str::to_string)
    }
    fn from_flag(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

/// A TOML array, or comma-separated items on the command line.
impl<T: Knob> Knob for Vec<T> {
    fn expected() -> String {
        format!("a list of {}", T::expected())
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        v.as_array()?.iter().map(T::from_toml).collect()
    }
    fn from_flag(s: &str) -> Option<Self> {
        s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(T::from_flag).collect()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(self.iter().filter_map(T::to_toml).collect()))
    }
}

/// Unset unless given; an unset knob is left out of the written TOML.
impl<T: Knob> Knob for Option<T> {
    fn expected() -> String {
        T::expected()
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        T::from_toml(v).map(Some)
    }
    fn from_flag(s: &str) -> Option<Self> {
        T::from_flag(s).map(Some)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::to_toml)
    }
}

/// A knob whose value is one of a fixed set of names.
macro_rules! choice {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::config::knob::Knob for $name {
            fn expected() -> String {
                $crate::config::knob::one_of($name::ALL.iter().map(|c| c.as_str()))
            }
            fn from_toml(v: &toml::Value) -> Option<Self> {
                Self::from_flag(v.as_str()?)
            }
            fn from_flag(s: &str) -> Option<Self> {
                $name::ALL.iter().copied().find(|c| c.as_str() == s)
            }
            fn to_toml(&self) -> Option<toml::Value> {
                Some(toml::Value::String(self.as_str().to_string()))
            }
        }
    };
}
pub(crate) use choice;

/// "a, b or c".
pub fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        let sep = match i {
            0 => "",
            _ if i + 1 == names.len() => " or ",
            _ => ", ",
        };
        let _ = write!(out, "{sep}{n}");
    }
    out
}

/// Range checks, written once for every knob that uses them.
pub mod check {
    pub fn at_least<T: PartialOrd + Copy + std::fmt::Display>(min: T) -> impl Fn(&T) -> Result<(), String> {
        move |v| if *v >= min { Ok(()) } else { Err(format!("must be ≥ {min}")) }
    }

    pub fn finite_nonneg(v: &f64) -> Result<(), String> {
        if v.is_finite() && *v >= 0.0 { Ok(()) } else { Err("must be a finite number ≥ 0".into()) }
    }

    pub fn finite_positive(v: &f64) -> Result<(), String> {
        if v.is_finite() && *v > 0.0 { Ok(()) } else { Err("must be a finite number > 0".into()) }
    }

    pub fn probability(v: &f64) -> Result<(), String> {
        if (0.0..=1.0).contains(v) { Ok(()) } else { Err("must be in [0, 1]".into()) }
    }

    /// (0, 1]: nucleus sampling keeps at least the most likely token.
    pub fn open_unit(v: &f64) -> Result<(), String> {
        if *v > 0.0 && *v <= 1.0 { Ok(()) } else { Err("must be in (0, 1]".into()) }
    }

    pub fn some_at_least(min: usize) -> impl Fn(&Option<usize>) -> Result<(), String> {
        move |v| match v {
            Some(n) if *n < min => Err(format!("must be ≥ {min}")),
            _ => Ok(()),
        }
    }

    #[allow(clippy::ptr_arg, reason = "a check takes the knob's own type")]
    pub fn not_empty<T>(v: &Vec<T>) -> Result<(), String> {
        if v.is_empty() { Err("must not be empty".into()) } else { Ok(()) }
    }

    pub fn any<T>(_: &T) -> Result<(), String> {
        Ok(())
    }
}
