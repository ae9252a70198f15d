// Row kernels: TPR threads cooperate on one row, 256 / TPR rows per
// workgroup. `reduce_lanes` combines the TPR partial values of a row through
// workgroup memory; every thread calls it (it holds barriers).

override TPR: u32 = 256u;

var<workgroup> lanes: array<f32, 256>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return wg_index(wid, nwg) * (256u / TPR) + lid / TPR;
}

fn reduce_lanes(v: f32, lid: u32, is_max: bool) -> f32 {
    let lane = lid % TPR;
    lanes[lid] = v;
    workgroupBarrier();
    for (var stride = TPR / 2u; stride > 0u; stride = stride / 2u) {
        if lane < stride {
            let o = lanes[lid + stride];
            if is_max {
                lanes[lid] = max_nan(lanes[lid], o);
            } else {
                lanes[lid] = lanes[lid] + o;
            }
        }
        workgroupBarrier();
    }
    let r = lanes[lid - lane];
    workgroupBarrier();
    return r;
}
