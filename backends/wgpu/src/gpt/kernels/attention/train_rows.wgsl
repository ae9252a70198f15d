// The shared-prompt row layout (`Rows`): B·P prompt rows, then N·S
// completion rows. Parameters 4..12 are the geometry, the same for the
// forward and the backward: 4 workgroups (R·H), 5 P, 6 S, 7 G, 8 B·P, 9 C,
// 10 H, 11 key stride (P + S) of the probabilities, 12 scale (f32 bits).

fn n_groups() -> u32 {
    return prm(4u);
}

fn n_c() -> u32 {
    return prm(9u);
}

fn n_h() -> u32 {
    return prm(10u);
}

fn head_size() -> u32 {
    return prm(9u) / prm(10u);
}

fn key_stride() -> u32 {
    return prm(11u);
}

fn qk_scale() -> f32 {
    return prmf(12u);
}

// The keys of query row i: nk keys, the first P of them (or all, for a
// prompt query) from row `pre` on, the rest from row `suf` on.
struct Qk {
    nk: u32,
    pre: u32,
    suf: u32,
}

fn query_keys(i: u32) -> Qk {
    let p = prm(5u);
    let bp = prm(8u);
    if i < bp {
        return Qk(i % p + 1u, i - i % p, 0u);
    }
    let s = prm(6u);
    let t = i - bp;
    let n = t / s;
    return Qk(p + t % s + 1u, n / prm(7u) * p, bp + n * s);
}

fn key_row(q: Qk, j: u32) -> u32 {
    let p = prm(5u);
    if j < p {
        return q.pre + j;
    }
    return q.suf + j - p;
}

// The queries that see key row r, in the order its gradient sums them: nq
// queries, the first npre from row `pre` on (its prompt's later rows), the
// rest from row `suf` on; r is key `pidx` of each of them.
struct Kq {
    nq: u32,
    npre: u32,
    pre: u32,
    suf: u32,
    pidx: u32,
}

fn key_queries(r: u32) -> Kq {
    let p = prm(5u);
    let s = prm(6u);
    let bp = prm(8u);
    if r < bp {
        let p0 = r % p;
        let gs = prm(7u) * s;
        return Kq(p - p0 + gs, p - p0, r, bp + r / p * gs, p0);
    }
    let s0 = (r - bp) % s;
    return Kq(s - s0, 0u, 0u, r, p + s0);
}

fn query_row(k: Kq, e: u32) -> u32 {
    if e < k.npre {
        return k.pre + e;
    }
    return k.suf + e - k.npre;
}
