// Row reductions over the last axis: OP 0 sum, 1 max (NaN ignored, as on the
// host), 2 stable log-sum-exp (max first, then Σ exp(x − max); a row of
// −inf gives −inf, a NaN entry gives NaN).

// Parameters: P (`ReduceParams` of mod.rs, where the struct is declared).

override OP: u32;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = row_of(wid, nwg, lid);
    let lane = lid % TPR;
    let c = P.c;
    let live = row < P.rows;
    let base = P.x + row * c;
    var acc = 0.0;
    if OP != 0u {
        acc = neg_inf();
    }
    if live {
        for (var j = lane; j < c; j = j + TPR) {
            let v = x[base + j];
            if OP == 0u {
                acc = acc + v;
            } else {
                acc = max_nan(acc, v);
            }
        }
    }
    var r = reduce_lanes(acc, lid, OP != 0u);
    if OP == 2u {
        let m = r;
        var s = 0.0;
        if live && is_finite(m) {
            for (var j = lane; j < c; j = j + TPR) {
                let v = x[base + j];
                if is_nan(v) {
                    s = nan();
                } else {
                    s = s + exp_safe(v - m);
                }
            }
        }
        s = reduce_lanes(s, lid, false);
        if is_finite(m) {
            r = m + log(s);
        }
    }
    if live && lane == 0u {
        out[P.out + row] = r;
    }
}
