//! `wapo loss CASE.json`: evaluate any objective on data exported from
//! another engine, or check an implementation against a golden case.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use wapo_core::Tensor;
use wapo_core::case::{Case, CaseOutput, FieldDiff, Tolerance, compare};
use wapo_core::host::HostTensor;

use crate::error::{CliError, Result};

/// Where the objective is computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum LossBackend {
    /// The reference HostTensor (float64; float32 with --f32).
    Host,
    /// The CPU backend (dfdx, float32, fused logits path).
    Cpu,
    /// The wgpu backend (WGSL compute shaders, float32, fused logits path).
    Wgpu,
}

#[derive(Args, Debug)]
pub struct LossArgs {
    /// The case file (`wapo-objective-case/1`).
    pub case: PathBuf,
    /// Compute in float32 (the host backend computes in float64 by default;
    /// cpu and wgpu always compute in float32).
    #[arg(long)]
    pub f32: bool,
    /// Compare with the file's `expected` object; print the max difference
    /// per field and exit 1 if any field is outside the tolerance.
    #[arg(long)]
    pub check: bool,
    #[arg(long, value_enum, default_value_t = LossBackend::Host)]
    pub backend: LossBackend,
}

/// Exit codes: 0 ok, 1 `--check` found a field out of tolerance, 2 the case
/// (or the backend) could not be evaluated.
pub fn run(args: &LossArgs) -> Result<ExitCode> {
    let path = args.case.as_path();
    let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
    let in_case = |e: wapo_core::Error| CliError::format(path, e.to_string());
    let case = Case::parse(&text).map_err(in_case)?;
    let (out, f32) = evaluate(&case, args).map_err(in_case)?;
    let json = out.to_json();
    if !args.check {
        println!("{}", render(&json));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(expected) = &case.expected else {
        return Err(CliError::format(path, "--check needs an `expected` object in the case"));
    };
    let tol = if f32 { Tolerance::F32 } else { Tolerance::F64 };
    let diffs = compare(&json, expected, tol);
    print_table(&diffs, tol);
    Ok(if diffs.iter().all(|d| d.ok) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Returns the output and whether it was computed in float32.
fn evaluate(case: &Case, args: &LossArgs) -> wapo_core::Result<(CaseOutput, bool)> {
    match args.backend {
        LossBackend::Host if args.f32 => Ok((run_on::<HostTensor<f32>>(&(), case)?, true)),
        LossBackend::Host => Ok((run_on::<HostTensor<f64>>(&(), case)?, false)),
        LossBackend::Cpu => Ok((run_on::<wapo_cpu::CpuTensor>(&wapo_cpu::Cpu::default(), case)?, true)),
        LossBackend::Wgpu => Ok((run_on::<wapo_wgpu::WgpuTensor>(&wapo_wgpu::WgpuContext::new()?, case)?, true)),
    }
}

fn run_on<T: Tensor>(dev: &T::Device, case: &Case) -> wapo_core::Result<CaseOutput> {
    case.evaluate::<T>(dev)
}

fn print_table(diffs: &[FieldDiff], tol: Tolerance) {
    println!("{:<32} {:>12}  result", "field", "max |Δ|");
    for d in diffs {
        let verdict = if d.ok {
            "ok".to_string()
        } else {
            format!("FAIL{}", d.worst.map(|w| format!(" (worst at flat index {w})")).unwrap_or_default())
        };
        let note = d.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
        println!("{:<32} {:>12.3e}  {verdict}{note}", d.field, d.max_abs);
    }
    let bad = diffs.iter().filter(|d| !d.ok).count();
    let rule = match tol.scale_floor {
        None => format!("|a − b| ≤ {:e} + {:e}·|b|", tol.abs, tol.rel),
        Some(f) => format!("|a − b| ≤ {:e}·max(field scale, {f}) + {:e}·|b|", tol.abs, tol.rel),
    };
    println!("{} fields, {bad} outside {rule}", diffs.len());
}

/// One field per line, each value compact: readable, and still JSON.
fn render(json: &serde_json::Value) -> String {
    let Some(obj) = json.as_object() else { return json.to_string() };
    let fields: Vec<String> =
        obj.iter().map(|(k, v)| format!("  {}: {}", serde_json::Value::from(k.as_str()), v)).collect();
    format!("{{\n{}\n}}", fields.join(",\n"))
}
