//! `section!`: declares a config section (one TOML table) once — each knob's
//! doc, type, default, flag and check — and derives from that declaration
//! its struct, its defaults, its reading from files and flags, its flags'
//! help and its documented TOML.

use std::fmt::Write as _;

use crate::config::knob::Source;
use crate::error::{CliError, Result};

/// One knob, as the flags and the docs see it.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// Dotted config path (`rl.steps`).
    pub path: String,
    /// Long flag without the dashes (`rl-steps`).
    pub flag: &'static str,
    pub doc: &'static [&'static str],
}

impl Leaf {
    /// The doc as one line (the flag's help).
    pub fn help(&self) -> String {
        self.doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    }
}

/// A declared section; see [`section!`].
pub trait Section {
    /// Every knob of this section and of its subsections, under `prefix`.
    fn leaves(&self, prefix: &str, out: &mut Vec<Leaf>);
    /// Sets the knob `key` of this section; `path` (its full dotted path)
    /// names it in errors.
    fn set_leaf(&mut self, key: &str, path: &str, src: Source<'_>) -> Result<()>;
    fn section_mut(&mut self, key: &str) -> Option<&mut dyn Section>;
    /// Runs every knob's check on its current value (a value set in code
    /// skips the check made on reading).
    fn check(&self, prefix: &str) -> Result<()>;
    /// This section's knobs as documented TOML, then its subsections as tables.
    fn write_toml(&self, prefix: &str, out: &mut String);
}

pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// Applies a TOML table: every key must be a knob or a subsection.
pub fn merge_table(section: &mut dyn Section, table: &toml::Table, prefix: &str) -> Result<()> {
    for (key, value) in table {
        let path = join(prefix, key);
        match (section.section_mut(key), value) {
            (Some(sub), toml::Value::Table(t)) => merge_table(sub, t, &path)?,
            (Some(_), _) => return Err(CliError::config(path, "expected a table")),
            (None, v) => section.set_leaf(key, &path, Source::Toml(v))?,
        }
    }
    Ok(())
}

/// Sets the knob at dotted `path` from a flag's text.
pub fn set_path(section: &mut dyn Section, path: &str, raw: &str) -> Result<()> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return Err(CliError::config(path, "empty field path")) };
    let mut cur = section;
    for p in parts {
        cur = cur.section_mut(p).ok_or_else(|| CliError::config(path, "unknown field"))?;
    }
    cur.set_leaf(last, path, Source::Flag(raw))
}

pub fn write_leaf(out: &mut String, key: &str, flag: &str, doc: &[&str], value: Option<toml::Value>) {
    for (i, line) in doc.iter().enumerate() {
        let tail = if i + 1 == doc.len() { format!(" (--{flag})") } else { String::new() };
        let _ = writeln!(out, "#{line}{tail}");
    }
    match value {
        Some(v) => {
            let _ = writeln!(out, "{key} = {v}");
        }
        None => {
            let _ = writeln!(out, "# {key} is unset");
        }
    }
}

pub fn write_table(out: &mut String, path: &str, doc: &[&str], section: &dyn Section) {
    out.push('\n');
    for line in doc {
        let _ = writeln!(out, "#{line}");
    }
    let _ = writeln!(out, "[{path}]");
    section.write_toml(path, out);
}

macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $ty:ty = $default:expr, $flag:literal $(, $check:expr)? ;
            )*
        }
        $( sections { $( $(#[doc = $subdoc:literal])* $sub:ident : $subty:ty ),* $(,)? } )?
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
            $($( $(#[doc = $subdoc])* pub $sub: $subty, )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: $default, )*
                    $($( $sub: <$subty>::default(), )*)?
                }
            }
        }

        impl $crate::config::section::Section for $name {
            fn leaves(&self, prefix: &str, out: &mut Vec<$crate::config::section::Leaf>) {
                use $crate::config::section::{Leaf, join};
                $( out.push(Leaf { path: join(prefix, stringify!($field)), flag: $flag, doc: &[$($doc),+] }); )*
                $($( self.$sub.leaves(&join(prefix, stringify!($sub)), out); )*)?
            }

            fn set_leaf(
                &mut self,
                key: &str,
                path: &str,
                src: $crate::config::knob::Source<'_>,
            ) -> $crate::error::Result<()> {
                use $crate::config::knob::Knob;
                use $crate::error::CliError;
                $(
                    if key == stringify!($field) {
                        let v = <$ty as Knob>::read(src).map_err(|r| CliError::config(path, r))?;
                        $( ($check)(&v).map_err(|r| CliError::config(path, r))?; )?
                        self.$field = v;
                        return Ok(());
                    }
                )*
                $($(
                    if key == stringify!($sub) {
                        return Err(CliError::config(path, "expected a table"));
                    }
                )*)?
                Err(CliError::config(path, "unknown field"))
            }

            fn section_mut(&mut self, key: &str) -> Option<&mut dyn $crate::config::section::Section> {
                $($( if key == stringify!($sub) { return Some(&mut self.$sub); } )*)?
                let _ = key;
                None
            }

            fn check(&self, prefix: &str) -> $crate::error::Result<()> {
                let _ = prefix;
                $( $(
                    ($check)(&self.$field).map_err(|r| {
                        $crate::error::CliError::config($crate::config::section::join(prefix, stringify!($field)), r)
                    })?;
                )? )*
                $($( self.$sub.check(&$crate::config::section::join(prefix, stringify!($sub)))?; )*)?
                Ok(())
            }

            fn write_toml(&self, prefix: &str, out: &mut String) {
                use $crate::config::knob::Knob;
                use $crate::config::section as s;
                let _ = prefix;
                $( s::write_leaf(out, stringify!($field), $flag, &[$($doc),+], Knob::to_toml(&self.$field)); )*
                $($( s::write_table(out, &s::join(prefix, stringify!($sub)), &[$($subdoc),*], &self.$sub); )*)?
            }
        }
    };
}
pub(crate) use section;
