// Tiles of the training attention over the shared-prompt layout (`Rows`):
// B·P prompt rows, then N·S completion rows, N = B·G. A tile is up to BT
// consecutive rows of one segment (one prompt's P rows, or one sample's S
// rows); the other side of the attention (keys for a query tile, queries
// for a key tile) streams through workgroup memory BS rows at a time.
// The kernel file declares `P` (its parameter struct, whose first field
// `geo` is the geometry below: `Geometry` of mod.rs, and a field `qkv`, the
// shift of the q|k|v rows), `qkv` and `pads`.

// The geometry: `Geometry` of mod.rs.

const WG: u32 = 64u;
// Marks "no padding" in P.pad.
const NO_PAD: u32 = 0xffffffffu;
// A masked score: finite, so that no infinity enters the arithmetic.
const NEG: f32 = -3.0e38;
// Workgroup floats of `pool` (POOL in mod.rs): with the two 64-float
// arrays below, 15,872 of the 16,384 bytes wgpu guarantees.
const POOL: u32 = 3840u;
// Head dims one thread accumulates: BT·hs ≤ WG·MAXR.
const MAXR: u32 = 16u;

// Rows of a tile (divides WG) and of a streamed block (at most WG).
override BT: u32;
override BS: u32;

var<workgroup> pool: array<f32, POOL>;
var<workgroup> sa: array<f32, WG>;
var<workgroup> sb: array<f32, WG>;

fn hs() -> u32 {
    return P.geo.c / P.geo.h;
}

// Floats between two head vectors in `pool`: hs made odd, so that threads
// reading the same dim of consecutive rows hit different memory banks.
fn stride() -> u32 {
    return hs() | 1u;
}

// Where element e of a row-major (rows, hs) block lands in `pool`.
fn at(e: u32) -> u32 {
    return e / hs() * stride() + e % hs();
}

// Width of a q|k|v row: H query heads, H_kv key heads, H_kv value heads.
fn row_w() -> u32 {
    return P.geo.c + 2u * P.geo.kv * hs();
}

fn kv_head(h: u32) -> u32 {
    return h / (P.geo.h / P.geo.kv);
}

fn k_off(kh: u32) -> u32 {
    return P.geo.c + kh * hs();
}

fn v_off(kh: u32) -> u32 {
    return P.geo.c + (P.geo.kv + kh) * hs();
}

fn n_prompts() -> u32 {
    return P.geo.bp / P.geo.p;
}

fn pad_of(b: u32) -> u32 {
    if P.pad == NO_PAD {
        return 0u;
    }
    return pads[P.pad + b];
}

struct Tile {
    row0: u32,
    len: u32,
    prompt: bool,
    // The prompt b (a prompt tile) or the sample n (a completion tile).
    seg: u32,
    // Position of row0 in its segment.
    pos0: u32,
}

fn prompt_tiles() -> u32 {
    return (P.geo.p + BT - 1u) / BT;
}

fn sample_tiles() -> u32 {
    return (P.geo.s + BT - 1u) / BT;
}

fn n_tiles() -> u32 {
    return n_prompts() * prompt_tiles() + n_prompts() * P.geo.g * sample_tiles();
}

fn tile_of(t: u32) -> Tile {
    let tp = prompt_tiles();
    let np = n_prompts() * tp;
    if t < np {
        let pos0 = t % tp * BT;
        return Tile(t / tp * P.geo.p + pos0, min(BT, P.geo.p - pos0), true, t / tp, pos0);
    }
    let ts = sample_tiles();
    let n = (t - np) / ts;
    let pos0 = (t - np) % ts * BT;
    return Tile(P.geo.bp + n * P.geo.s + pos0, min(BT, P.geo.s - pos0), false, n, pos0);
}

// The keys of a query tile, indexed as in `Rows` (a prompt's positions,
// then for a completion its own positions after P): how many the tile's
// last query sees, and key j's row.
fn tile_keys(x: Tile) -> u32 {
    if x.prompt {
        return x.pos0 + x.len;
    }
    return P.geo.p + x.pos0 + x.len;
}

fn key_row(x: Tile, j: u32) -> u32 {
    if x.prompt {
        return x.seg * P.geo.p + j;
    }
    if j < P.geo.p {
        return x.seg / P.geo.g * P.geo.p + j;
    }
    return P.geo.bp + x.seg * P.geo.s + j - P.geo.p;
}

// Whether query row qr attends to key row kr: causal within its sequence
// (its prompt, then its own completion), a prompt's first pad[b] rows seen
// by none but a padding query itself (which sees only itself, so that its
// row stays finite).
fn sees(qr: u32, kr: u32) -> bool {
    if qr < P.geo.bp {
        let b = qr / P.geo.p;
        if kr >= P.geo.bp || kr / P.geo.p != b {
            return false;
        }
        let qp = qr % P.geo.p;
        let kp = kr % P.geo.p;
        return kp <= qp && kp >= min(pad_of(b), qp);
    }
    let n = (qr - P.geo.bp) / P.geo.s;
    if kr < P.geo.bp {
        let b = n / P.geo.g;
        return kr / P.geo.p == b && kr % P.geo.p >= pad_of(b);
    }
    return (kr - P.geo.bp) / P.geo.s == n && (kr - P.geo.bp) % P.geo.s <= (qr - P.geo.bp) % P.geo.s;
}

// The dot product of two head vectors in `pool`.
fn pool_dot(a: u32, b: u32) -> f32 {
    var s = 0.0;
    for (var d = 0u; d < hs(); d++) {
        s += pool[a + d] * pool[b + d];
    }
    return s;
}

// Loads rows j0 .. j0 + bn of the tile's keys, `off` floats into each
// q|k|v row (a key or a value head), into the pool from `dst` on.
fn load_keys(dst: u32, x: Tile, j0: u32, bn: u32, off: u32, t: u32) {
    let hs = hs();
    for (var e = t; e < bn * hs; e += WG) {
        pool[dst + at(e)] = qkv[P.qkv + key_row(x, j0 + e / hs) * row_w() + off + e % hs];
    }
}

// The (query tile, head) of workgroup g, with the head's query, key and
// value offsets in a q|k|v row; `valid` is false past the last tile.
struct QueryTile {
    valid: bool,
    x: Tile,
    h: u32,
    qo: u32,
    ko: u32,
    vo: u32,
}

fn query_tile(g: u32) -> QueryTile {
    let h = g % P.geo.h;
    let kh = kv_head(h);
    return QueryTile(g < n_tiles() * P.geo.h, tile_of(g / P.geo.h), h, h * hs(), k_off(kh), v_off(kh));
}
