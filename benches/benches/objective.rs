//! Forward+backward of the logits-level WAPO objective on the CPU and wgpu
//! backends, at shapes small enough for a CPU Vulkan driver. The full-size
//! table (with the copy-kernel yardstick) is `wapo bench objective`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wapo_wgpu::bench::BenchBatch;

/// N·T rows × V: a wide vocabulary and many short rows.
const SHAPES: [(usize, usize); 2] = [(64, 32768), (4096, 64)];

fn objective(c: &mut Criterion) {
    let mut group = c.benchmark_group("objective/wapo_fwd_bwd");
    group.sample_size(10);
    let cpu = wapo_cpu::Cpu::default();
    let gpu = wapo_wgpu::test_context();
    for (rows, vocab) in SHAPES {
        // Logits read once, gradient written once.
        group.throughput(Throughput::Bytes((2 * 4 * rows * vocab) as u64));
        let batch = BenchBatch::<wapo_cpu::CpuTensor>::synthetic(&cpu, rows, vocab).expect("cpu batch");
        group.bench_function(format!("cpu/{rows}x{vocab}"), |b| b.iter(|| batch.run().expect("cpu objective")));
        if let Some(dev) = &gpu {
            let batch = BenchBatch::<wapo_wgpu::WgpuTensor>::synthetic(dev, rows, vocab).expect("wgpu batch");
            group.bench_function(format!("wgpu/{rows}x{vocab}"), |b| {
                b.iter(|| {
                    let out = batch.run().expect("wgpu objective");
                    dev.synchronize().expect("wgpu sync");
                    out
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, objective);
criterion_main!(benches);
