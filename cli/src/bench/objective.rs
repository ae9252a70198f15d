//! `wapo bench objective`: ms per forward+backward of the logits-level WAPO
//! objective at N·T × V shapes, the effective bandwidth (logits read once,
//! gradient written once) and, as the yardstick, a plain copy of as many
//! bytes on the same device in the same run.

use clap::{Args, ValueEnum};
use wapo_wgpu::bench::{BenchRow, DEFAULT_SHAPES, median_ms, time_objective};

/// Where the objective runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum BenchBackend {
    /// The dfdx CPU backend (its fused objective).
    Cpu,
    /// WGSL compute shaders on the GPU chosen by `WAPO_ADAPTER` (or the best one).
    Wgpu,
}

#[derive(Args, Debug)]
pub struct ObjectiveArgs {
    #[arg(long, value_enum, default_value_t = BenchBackend::Wgpu)]
    pub backend: BenchBackend,
    /// Comma-separated N·T×V shapes, e.g. `4096x32768,65536x64`
    /// (default: 4096x32768,16384x32768,8192x151936,65536x64).
    #[arg(long, value_parser = parse_shapes)]
    pub shapes: Option<Shapes>,
    /// Timed iterations per shape (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
}

/// A list of N·T × V shapes (one flag value).
#[derive(Clone, Debug)]
pub struct Shapes(pub Vec<(usize, usize)>);

fn parse_shapes(s: &str) -> Result<Shapes, String> {
    s.split(',')
        .map(|part| {
            let (n, v) = part.trim().split_once(['x', 'X', '×']).ok_or(format!("`{part}`: expected ROWSxVOCAB"))?;
            let parse = |x: &str| x.trim().parse::<usize>().ok().filter(|v| *v > 0);
            match (parse(n), parse(v)) {
                (Some(n), Some(v)) => Ok((n, v)),
                _ => Err(format!("`{part}`: sizes must be positive integers")),
            }
        })
        .collect::<Result<_, _>>()
        .map(Shapes)
}

pub fn run(args: &ObjectiveArgs) -> crate::error::Result<()> {
    let shapes = args.shapes.clone().map_or(DEFAULT_SHAPES.to_vec(), |s| s.0);
    match args.backend {
        BenchBackend::Wgpu => run_wgpu(&shapes, args.iters)?,
        BenchBackend::Cpu => run_cpu(&shapes, args.iters)?,
    }
    Ok(())
}

fn run_wgpu(shapes: &[(usize, usize)], iters: usize) -> wapo_core::Result<()> {
    let dev = wapo_wgpu::WgpuContext::new()?;
    header(&format!("wgpu on {}", dev.adapter_name()));
    for &shape in shapes {
        let rows = wapo_wgpu::bench::bench_objective(&dev, &[shape], iters)?;
        rows.iter().for_each(print_row);
    }
    Ok(())
}

fn run_cpu(shapes: &[(usize, usize)], iters: usize) -> wapo_core::Result<()> {
    let dev = wapo_cpu::Cpu::default();
    header("cpu (dfdx)");
    for &(rows, vocab) in shapes {
        let mut row = time_objective::<wapo_cpu::CpuTensor>(&dev, rows, vocab, iters, || Ok(()))?;
        row.copy_gbps = Some(host_copy_gbps(rows * vocab, iters)?);
        print_row(&row);
    }
    Ok(())
}

/// GB/s (read + write) of copying `numel` f32 in host memory.
fn host_copy_gbps(numel: usize, iters: usize) -> wapo_core::Result<f64> {
    let src = vec![1.0f32; numel];
    let mut dst = vec![0.0f32; numel];
    let ms = median_ms(iters, || {
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        Ok(())
    })?;
    Ok(2.0 * 4.0 * numel as f64 / (ms * 1e-3) / 1e9)
}

fn header(device: &str) {
    println!("objective: wapo, forward+backward (loss, ∂loss/∂logits, entropy, Σp²) — {device}");
    println!("{:>16} {:>11} {:>10} {:>11} {:>10}", "N·T × V", "ms", "GB/s", "copy GB/s", "% of copy");
}

fn print_row(r: &BenchRow) {
    let shape = format!("{}×{}", r.rows, r.vocab);
    let (copy, share) = match r.copy_gbps {
        Some(c) => (format!("{c:.1}"), format!("{:.0}%", 100.0 * r.gbps / c)),
        None => ("-".into(), "-".into()),
    };
    println!("{shape:>16} {:>11.3} {:>10.1} {copy:>11} {share:>10}", r.ms, r.gbps);
}
