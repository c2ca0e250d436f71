// Fused TV-L1 iterations of the representation-flow layer (models/rep_flow.py), forward and exact backward.
//
// Plain C++ with a C ABI, no libtorch: it builds with setuptools alone (``pip install -e .``) and Python calls
// it through ctypes on tensors' data pointers (ctypes releases the GIL). It is also a valid (empty) Python
// extension module so that setuptools builds and places it like any other extension.
//
// Each frame pair is independent: threads take whole pairs, and a pair runs all its iterations before the
// next one, so its ~10 fields stay in cache. One iteration is a single sweep over the rows: the flow of row r
// is updated first (it needs the old duals of rows r and r-1), then the duals of row r-1 (they need the new
// flow of rows r-1 and r). Every operation is done in the same order as the PyTorch reference (except one reciprocal
// for the two dual divisions), and the build disables FMA contraction, so the result matches the reference to
// rounding.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#if defined(_WIN32)
#define FLOW_EXPORT extern "C" __declspec(dllexport)
#else
#define FLOW_EXPORT extern "C" __attribute__((visibility("default")))
#endif

// Run-time dispatch to AVX-512 / AVX2 clones where the toolchain supports it (glibc ifunc).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FLOW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FLOW_CLONES
#endif

#if defined(__GNUC__)
#define FLOW_INLINE inline __attribute__((always_inline))
#define FLOW_RESTRICT __restrict__
#else
#define FLOW_INLINE inline
#define FLOW_RESTRICT
#endif

namespace {

template <class T>
struct Hyper {
    T theta;   // |theta| + 1e-12
    T thr;     // lambda * theta
    T a;       // tau / theta
};

// Per-pair inputs and state. Every field is H*W contiguous values.
template <class T>
struct Pair {
    const T* gx;
    const T* gy;
    const T* gsq;
    const T* rhoc;
    T* u0;
    T* u1;
    T* px0;
    T* px1;
    T* py0;
    T* py1;
};

// Flow update of one row: u <- u + clamp(-rho/|g|^2, -thr, thr) g + theta div(p), with the old duals.
template <class T>
FLOW_INLINE void flow_row(const T* FLOW_RESTRICT gx, const T* FLOW_RESTRICT gy, const T* FLOW_RESTRICT gsq,
                          const T* FLOW_RESTRICT rhoc, T* FLOW_RESTRICT u0, T* FLOW_RESTRICT u1,
                          const T* FLOW_RESTRICT px0, const T* FLOW_RESTRICT px1,
                          const T* FLOW_RESTRICT py0_here, const T* FLOW_RESTRICT py1_here,
                          const T* FLOW_RESTRICT py0_above, const T* FLOW_RESTRICT py1_above,
                          int64_t W, Hyper<T> h) {
    const T eps = T(1e-12);
    // x-divergence term: pxm[j] - pxm[j-1] with pxm[W-1] = 0 and pxm[-1] = 0.
    auto pixel = [&](int64_t j, T divx0, T divx1) {
        T rho = (rhoc[j] + (gx[j] * u0[j] + gy[j] * u1[j])) + eps;
        T q = -rho / gsq[j];
        T step = std::min(std::max(q, -h.thr), h.thr);
        T div0 = divx0 + (py0_here[j] - py0_above[j]);
        T div1 = divx1 + (py1_here[j] - py1_above[j]);
        u0[j] = (u0[j] + step * gx[j]) + h.theta * div0;
        u1[j] = (u1[j] + step * gy[j]) + h.theta * div1;
    };
    if (W == 1) {
        pixel(0, T(0), T(0));
        return;
    }
    pixel(0, px0[0] - T(0), px1[0] - T(0));
#pragma GCC ivdep
    for (int64_t j = 1; j < W - 1; ++j) {
        T rho = (rhoc[j] + (gx[j] * u0[j] + gy[j] * u1[j])) + eps;
        T q = -rho / gsq[j];
        T step = std::min(std::max(q, -h.thr), h.thr);
        T div0 = (px0[j] - px0[j - 1]) + (py0_here[j] - py0_above[j]);
        T div1 = (px1[j] - px1[j - 1]) + (py1_here[j] - py1_above[j]);
        u0[j] = (u0[j] + step * gx[j]) + h.theta * div0;
        u1[j] = (u1[j] + step * gy[j]) + h.theta * div1;
    }
    pixel(W - 1, T(0) - px0[W - 2], T(0) - px1[W - 2]);
}

// Dual update of one row of one flow channel: p <- (p + a grad u) / (1 + a |grad u|).
template <class T>
FLOW_INLINE void dual_row(const T* FLOW_RESTRICT u, const T* FLOW_RESTRICT u_below, T* FLOW_RESTRICT px,
                          T* FLOW_RESTRICT py, int64_t W, Hyper<T> h) {
    const T eps = T(1e-12);
#pragma GCC ivdep
    for (int64_t j = 0; j < W - 1; ++j) {
        T dx = u[j + 1] - u[j];
        T dy = u_below[j] - u[j];
        T inv_scale = T(1) / (T(1) + h.a * std::sqrt((dx * dx + dy * dy) + eps));
        px[j] = (px[j] + h.a * dx) * inv_scale;
        py[j] = (py[j] + h.a * dy) * inv_scale;
    }
    const int64_t j = W - 1;
    T dx = T(0) - u[j];
    T dy = u_below[j] - u[j];
    T inv_scale = T(1) / (T(1) + h.a * std::sqrt((dx * dx + dy * dy) + eps));
    px[j] = (px[j] + h.a * dx) * inv_scale;
    py[j] = (py[j] + h.a * dy) * inv_scale;
}

template <class T>
FLOW_INLINE void iteration(const Pair<T>& p, int64_t H, int64_t W, Hyper<T> h, const T* zeros) {
    for (int64_t r = 0; r <= H; ++r) {
        if (r < H) {
            const int64_t o = r * W;
            const bool last = r == H - 1;  // the last row of py counts as zero in the divergence
            const T* py0_here = last ? zeros : p.py0 + o;
            const T* py1_here = last ? zeros : p.py1 + o;
            const T* py0_above = r == 0 ? zeros : p.py0 + o - W;
            const T* py1_above = r == 0 ? zeros : p.py1 + o - W;
            flow_row<T>(p.gx + o, p.gy + o, p.gsq + o, p.rhoc + o, p.u0 + o, p.u1 + o, p.px0 + o, p.px1 + o,
                        py0_here, py1_here, py0_above, py1_above, W, h);
        }
        if (r >= 1) {
            const int64_t q = r - 1, o = q * W;
            const bool last = q == H - 1;
            dual_row<T>(p.u0 + o, last ? zeros : p.u0 + o + W, p.px0 + o, p.py0 + o, W, h);
            dual_row<T>(p.u1 + o, last ? zeros : p.u1 + o + W, p.px1 + o, p.py1 + o, W, h);
        }
    }
}

// ---- forward ----------------------------------------------------------------------------------------------
// gx, gy, gsq, rhoc: [N, H, W]. flow: [N, 2, H, W] (output). dual: [N, 4, H, W] workspace (px0 px1 py0 py1).
// saved: null, or [N, K, 6, H, W] receiving (u0 u1 px0 px1 py0 py1) at the start of every iteration.
template <class T>
FLOW_INLINE void forward_pairs(int64_t begin, int64_t end, const T* gx, const T* gy, const T* gsq, const T* rhoc,
                               T* flow, T* dual, T* saved, int64_t H, int64_t W, int64_t K, Hyper<T> h) {
    const int64_t hw = H * W;
    std::vector<T> zeros(static_cast<size_t>(W), T(0));
    for (int64_t n = begin; n < end; ++n) {
        T* u = flow + n * 2 * hw;
        T* d = dual + n * 4 * hw;
        std::memset(u, 0, sizeof(T) * 2 * hw);
        std::memset(d, 0, sizeof(T) * 4 * hw);
        Pair<T> p{gx + n * hw, gy + n * hw, gsq + n * hw, rhoc + n * hw, u, u + hw, d, d + hw, d + 2 * hw,
                  d + 3 * hw};
        for (int64_t k = 0; k < K; ++k) {
            if (saved) {
                T* s = saved + (n * K + k) * 6 * hw;
                std::memcpy(s, u, sizeof(T) * 2 * hw);
                std::memcpy(s + 2 * hw, d, sizeof(T) * 4 * hw);
            }
            iteration<T>(p, H, W, h, zeros.data());
        }
    }
}

FLOW_CLONES void forward_pairs_f32(int64_t begin, int64_t end, const float* gx, const float* gy, const float* gsq,
                                   const float* rhoc, float* flow, float* dual, float* saved, int64_t H, int64_t W,
                                   int64_t K, Hyper<float> h) {
    forward_pairs<float>(begin, end, gx, gy, gsq, rhoc, flow, dual, saved, H, W, K, h);
}

FLOW_CLONES void forward_pairs_f64(int64_t begin, int64_t end, const double* gx, const double* gy,
                                   const double* gsq, const double* rhoc, double* flow, double* dual, double* saved,
                                   int64_t H, int64_t W, int64_t K, Hyper<double> h) {
    forward_pairs<double>(begin, end, gx, gy, gsq, rhoc, flow, dual, saved, H, W, K, h);
}

inline void forward_dispatch(int64_t b, int64_t e, const float* gx, const float* gy, const float* gsq,
                             const float* rhoc, float* flow, float* dual, float* saved, int64_t H, int64_t W,
                             int64_t K, Hyper<float> h) {
    forward_pairs_f32(b, e, gx, gy, gsq, rhoc, flow, dual, saved, H, W, K, h);
}

inline void forward_dispatch(int64_t b, int64_t e, const double* gx, const double* gy, const double* gsq,
                             const double* rhoc, double* flow, double* dual, double* saved, int64_t H, int64_t W,
                             int64_t K, Hyper<double> h) {
    forward_pairs_f64(b, e, gx, gy, gsq, rhoc, flow, dual, saved, H, W, K, h);
}

// ---- backward ---------------------------------------------------------------------------------------------
// Reverse sweep over the iterations, from the saved start state of each one. Accumulates the gradients of
// gx, gy, gsq, rhoc (per pixel) and of theta, thr, a (into sums[3]). Per-pixel accumulators for the three
// scalars keep the loops free of a serial reduction, so they vectorise; they are summed once per pair.
template <class T>
FLOW_INLINE void backward_pairs(int64_t begin, int64_t end, const T* gx_all, const T* gy_all, const T* gsq_all,
                                const T* rhoc_all, const T* saved, const T* grad_flow, T* grad_gx, T* grad_gy,
                                T* grad_gsq, T* grad_rhoc, double* sums, int64_t H, int64_t W, int64_t K,
                                Hyper<T> h) {
    const int64_t hw = H * W;
    const T eps = T(1e-12);
    std::vector<T> buffer(static_cast<size_t>(19 * hw + W), T(0));
    T* unew = buffer.data();          // u_{k+1}: 2 fields
    T* dbar_x = unew + 2 * hw;        // adjoint of grad_x u_{k+1}: 2 fields
    T* dbar_y = dbar_x + 2 * hw;      // adjoint of grad_y u_{k+1}: 2 fields
    T* ubar2 = dbar_y + 2 * hw;       // adjoint of u_{k+1} including the dual path: 2 fields
    T* ubar = ubar2 + 2 * hw;         // adjoint of u_{k+1} from later iterations (then of u_k): 2 fields
    T* pbar = ubar + 2 * hw;          // adjoint of the duals: 4 fields (px0 px1 py0 py1)
    T* acc = pbar + 4 * hw;           // per-pixel sums for theta, thr, a: 3 fields
    const T* zeros = acc + 3 * hw;    // W zeros
    T* acc_theta = acc;
    T* acc_thr = acc + hw;
    T* acc_a = acc + 2 * hw;
    for (int64_t n = begin; n < end; ++n) {
        const T* gx = gx_all + n * hw;
        const T* gy = gy_all + n * hw;
        const T* gsq = gsq_all + n * hw;
        const T* rhoc = rhoc_all + n * hw;
        T* ggx = grad_gx + n * hw;
        T* ggy = grad_gy + n * hw;
        T* ggsq = grad_gsq + n * hw;
        T* grhoc = grad_rhoc + n * hw;
        std::memcpy(ubar, grad_flow + n * 2 * hw, sizeof(T) * 2 * hw);
        std::memset(pbar, 0, sizeof(T) * 4 * hw);
        std::memset(acc, 0, sizeof(T) * 3 * hw);
        for (int64_t k = K - 1; k >= 0; --k) {
            const T* s = saved + (n * K + k) * 6 * hw;
            const T* u0 = s;
            const T* u1 = s + hw;
            const T* px[2] = {s + 2 * hw, s + 3 * hw};
            const T* py[2] = {s + 4 * hw, s + 5 * hw};
            // 1. recompute u_{k+1} exactly as the forward pass did
            std::memcpy(unew, s, sizeof(T) * 2 * hw);
            for (int64_t r = 0; r < H; ++r) {
                const int64_t o = r * W;
                const bool last = r == H - 1;
                flow_row<T>(gx + o, gy + o, gsq + o, rhoc + o, unew + o, unew + hw + o, px[0] + o, px[1] + o,
                            last ? zeros : py[0] + o, last ? zeros : py[1] + o, r == 0 ? zeros : py[0] + o - W,
                            r == 0 ? zeros : py[1] + o - W, W, h);
            }
            // 2. adjoint of p' = (p + a d) / s, s = 1 + a n, n = sqrt(dx^2 + dy^2 + eps), d = grad u_{k+1}
            for (int c = 0; c < 2; ++c) {
                for (int64_t r = 0; r < H; ++r) {
                    const int64_t o = r * W;
                    const T* un = unew + c * hw + o;
                    const T* un_below = r == H - 1 ? zeros : un + W;
                    const T* pxc = px[c] + o;
                    const T* pyc = py[c] + o;
                    T* pbx = pbar + c * hw + o;
                    T* pby = pbar + (2 + c) * hw + o;
                    T* bx = dbar_x + c * hw + o;
                    T* by = dbar_y + c * hw + o;
                    T* ga = acc_a + o;
                    auto pixel = [&](int64_t j, T dx) {
                        T dy = un_below[j] - un[j];
                        T norm = std::sqrt((dx * dx + dy * dy) + eps);
                        T scale = T(1) + h.a * norm;
                        T inv_scale = T(1) / scale;
                        T px_new = (pxc[j] + h.a * dx) * inv_scale;
                        T py_new = (pyc[j] + h.a * dy) * inv_scale;
                        T gpx = pbx[j], gpy = pby[j];
                        T gscale = -(gpx * px_new + gpy * py_new) * inv_scale;
                        ga[j] += (gpx * dx + gpy * dy) * inv_scale + gscale * norm;
                        T gnorm_over_norm = gscale * h.a / norm;
                        bx[j] = h.a * gpx * inv_scale + gnorm_over_norm * dx;
                        by[j] = h.a * gpy * inv_scale + gnorm_over_norm * dy;
                        pbx[j] = gpx * inv_scale;
                        pby[j] = gpy * inv_scale;
                    };
#pragma GCC ivdep
                    for (int64_t j = 0; j < W - 1; ++j) pixel(j, un[j + 1] - un[j]);
                    pixel(W - 1, T(0) - un[W - 1]);
                }
            }
            // 3. ubar2 = ubar + grad^T(dbar): ubar2[j] += dbar_x[j-1] - dbar_x[j] + dbar_y[r-1] - dbar_y[r]
            for (int c = 0; c < 2; ++c) {
                for (int64_t r = 0; r < H; ++r) {
                    const int64_t o = c * hw + r * W;
                    const T* bx = dbar_x + o;
                    const T* by = dbar_y + o;
                    const T* by_above = r == 0 ? zeros : by - W;
                    const T* ub = ubar + o;
                    T* ub2 = ubar2 + o;
                    ub2[0] = ub[0] + (T(0) - bx[0]) + (by_above[0] - by[0]);
#pragma GCC ivdep
                    for (int64_t j = 1; j < W; ++j) ub2[j] = ub[j] + (bx[j - 1] - bx[j]) + (by_above[j] - by[j]);
                }
            }
            // 4. adjoint of u_{k+1} = u_k + clamp(-rho/gsq, -thr, thr) g + theta div(p_k)
            for (int64_t r = 0; r < H; ++r) {
                const int64_t o = r * W;
                const bool last = r == H - 1;
                const T* b0 = ubar2 + o;
                const T* b1 = ubar2 + hw + o;
                const T* py0_here = last ? zeros : py[0] + o;
                const T* py1_here = last ? zeros : py[1] + o;
                const T* py0_above = r == 0 ? zeros : py[0] + o - W;
                const T* py1_above = r == 0 ? zeros : py[1] + o - W;
                const T* px0 = px[0] + o;
                const T* px1 = px[1] + o;
                auto pixel = [&](int64_t j, T divx0, T divx1) {
                    const int64_t i = o + j;
                    T div0 = divx0 + (py0_here[j] - py0_above[j]);
                    T div1 = divx1 + (py1_here[j] - py1_above[j]);
                    acc_theta[i] += b0[j] * div0 + b1[j] * div1;
                    T rho = (rhoc[i] + (gx[i] * u0[i] + gy[i] * u1[i])) + eps;
                    T q = -rho / gsq[i];
                    T step = std::min(std::max(q, -h.thr), h.thr);
                    T gstep = b0[j] * gx[i] + b1[j] * gy[i];
                    // clamp: the gradient goes to the bound that is active, else to q (ties go to q)
                    T to_thr = q > h.thr ? gstep : (q < -h.thr ? -gstep : T(0));
                    T gq = (q > h.thr || q < -h.thr) ? T(0) : gstep;
                    acc_thr[i] += to_thr;
                    T grho = -gq / gsq[i];
                    ggsq[i] += grho * q;
                    grhoc[i] += grho;
                    ggx[i] += b0[j] * step + grho * u0[i];
                    ggy[i] += b1[j] * step + grho * u1[i];
                    ubar[i] = b0[j] + grho * gx[i];
                    ubar[hw + i] = b1[j] + grho * gy[i];
                };
                if (W == 1) {
                    pixel(0, T(0), T(0));
                } else {
                    pixel(0, px0[0], px1[0]);
#pragma GCC ivdep
                    for (int64_t j = 1; j < W - 1; ++j) pixel(j, px0[j] - px0[j - 1], px1[j] - px1[j - 1]);
                    pixel(W - 1, T(0) - px0[W - 2], T(0) - px1[W - 2]);
                }
                // divergence adjoint: pbar_x[j] += theta (b[j] - b[j+1]) for j < W-1; pbar_y[r] += theta
                // (b[r] - b[r+1]) for r < H-1
                for (int c = 0; c < 2; ++c) {
                    const T* b = ubar2 + c * hw + o;
                    T* pbx = pbar + c * hw + o;
                    T* pby = pbar + (2 + c) * hw + o;
#pragma GCC ivdep
                    for (int64_t j = 0; j < W - 1; ++j) pbx[j] += h.theta * (b[j] - b[j + 1]);
                    if (!last) {
#pragma GCC ivdep
                        for (int64_t j = 0; j < W; ++j) pby[j] += h.theta * (b[j] - b[j + W]);
                    }
                }
            }
        }
        for (int f = 0; f < 3; ++f) {
            double total = 0;
            for (int64_t i = 0; i < hw; ++i) total += double(acc[f * hw + i]);
            sums[f] += total;
        }
    }
}

FLOW_CLONES void backward_pairs_f32(int64_t begin, int64_t end, const float* gx, const float* gy, const float* gsq,
                                    const float* rhoc, const float* saved, const float* grad_flow, float* grad_gx,
                                    float* grad_gy, float* grad_gsq, float* grad_rhoc, double* sums, int64_t H,
                                    int64_t W, int64_t K, Hyper<float> h) {
    backward_pairs<float>(begin, end, gx, gy, gsq, rhoc, saved, grad_flow, grad_gx, grad_gy, grad_gsq, grad_rhoc,
                          sums, H, W, K, h);
}

FLOW_CLONES void backward_pairs_f64(int64_t begin, int64_t end, const double* gx, const double* gy,
                                    const double* gsq, const double* rhoc, const double* saved,
                                    const double* grad_flow, double* grad_gx, double* grad_gy, double* grad_gsq,
                                    double* grad_rhoc, double* sums, int64_t H, int64_t W, int64_t K,
                                    Hyper<double> h) {
    backward_pairs<double>(begin, end, gx, gy, gsq, rhoc, saved, grad_flow, grad_gx, grad_gy, grad_gsq, grad_rhoc,
                           sums, H, W, K, h);
}

inline void backward_dispatch(int64_t b, int64_t e, const float* gx, const float* gy, const float* gsq,
                              const float* rhoc, const float* saved, const float* grad_flow, float* ggx, float* ggy,
                              float* ggsq, float* grhoc, double* sums, int64_t H, int64_t W, int64_t K,
                              Hyper<float> h) {
    backward_pairs_f32(b, e, gx, gy, gsq, rhoc, saved, grad_flow, ggx, ggy, ggsq, grhoc, sums, H, W, K, h);
}

inline void backward_dispatch(int64_t b, int64_t e, const double* gx, const double* gy, const double* gsq,
                              const double* rhoc, const double* saved, const double* grad_flow, double* ggx,
                              double* ggy, double* ggsq, double* grhoc, double* sums, int64_t H, int64_t W,
                              int64_t K, Hyper<double> h) {
    backward_pairs_f64(b, e, gx, gy, gsq, rhoc, saved, grad_flow, ggx, ggy, ggsq, grhoc, sums, H, W, K, h);
}

// Below about a millisecond of work per thread, starting threads (and waiting for a descheduled one on a busy
// machine) costs more than it saves; PyTorch's intra-op grain size follows the same idea.
constexpr int64_t kPixelIterationsPerThread = int64_t(1) << 20;

template <class F>
void parallel_over_pairs(int64_t N, int64_t work, int num_threads, F&& body) {
    int64_t by_work = std::max<int64_t>(1, work / kPixelIterationsPerThread);
    int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({int64_t(num_threads), N, by_work})));
    if (threads == 1) {
        body(0, 0, N);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (int t = 1; t < threads; ++t)
        pool.emplace_back([&, t] { body(t, N * t / threads, N * (t + 1) / threads); });
    body(0, 0, N / threads);
    for (auto& thread : pool) thread.join();
}

template <class T>
void forward_impl(const T* gx, const T* gy, const T* gsq, const T* rhoc, T* flow, T* dual, T* saved, int64_t N,
                  int64_t H, int64_t W, int64_t K, double theta, double thr, double a, int num_threads) {
    Hyper<T> h{T(theta), T(thr), T(a)};
    parallel_over_pairs(N, N * H * W * K, num_threads, [&](int, int64_t begin, int64_t end) {
        forward_dispatch(begin, end, gx, gy, gsq, rhoc, flow, dual, saved, H, W, K, h);
    });
}

template <class T>
void backward_impl(const T* gx, const T* gy, const T* gsq, const T* rhoc, const T* saved, const T* grad_flow,
                   T* grad_gx, T* grad_gy, T* grad_gsq, T* grad_rhoc, double* sums, int64_t N, int64_t H, int64_t W,
                   int64_t K, double theta, double thr, double a, int num_threads) {
    Hyper<T> h{T(theta), T(thr), T(a)};
    std::vector<double> partial(3 * static_cast<size_t>(std::max(1, num_threads)), 0.0);
    parallel_over_pairs(N, N * H * W * K, num_threads, [&](int t, int64_t begin, int64_t end) {
        backward_dispatch(begin, end, gx, gy, gsq, rhoc, saved, grad_flow, grad_gx, grad_gy, grad_gsq, grad_rhoc,
                          partial.data() + 3 * t, H, W, K, h);
    });
    sums[0] = sums[1] = sums[2] = 0.0;
    for (size_t t = 0; t < partial.size() / 3; ++t)
        for (int i = 0; i < 3; ++i) sums[i] += partial[3 * t + i];
}

}  // namespace

FLOW_EXPORT int rep_flow_kernel_version() { return 1; }

FLOW_EXPORT void rep_flow_forward_f32(const float* gx, const float* gy, const float* gsq, const float* rhoc,
                                      float* flow, float* dual, float* saved, int64_t N, int64_t H, int64_t W,
                                      int64_t K, double theta, double thr, double a, int num_threads) {
    forward_impl<float>(gx, gy, gsq, rhoc, flow, dual, saved, N, H, W, K, theta, thr, a, num_threads);
}

FLOW_EXPORT void rep_flow_forward_f64(const double* gx, const double* gy, const double* gsq, const double* rhoc,
                                      double* flow, double* dual, double* saved, int64_t N, int64_t H, int64_t W,
                                      int64_t K, double theta, double thr, double a, int num_threads) {
    forward_impl<double>(gx, gy, gsq, rhoc, flow, dual, saved, N, H, W, K, theta, thr, a, num_threads);
}

FLOW_EXPORT void rep_flow_backward_f32(const float* gx, const float* gy, const float* gsq, const float* rhoc,
                                       const float* saved, const float* grad_flow, float* grad_gx, float* grad_gy,
                                       float* grad_gsq, float* grad_rhoc, double* sums, int64_t N, int64_t H,
                                       int64_t W, int64_t K, double theta, double thr, double a, int num_threads) {
    backward_impl<float>(gx, gy, gsq, rhoc, saved, grad_flow, grad_gx, grad_gy, grad_gsq, grad_rhoc, sums, N, H, W,
                         K, theta, thr, a, num_threads);
}

FLOW_EXPORT void rep_flow_backward_f64(const double* gx, const double* gy, const double* gsq, const double* rhoc,
                                       const double* saved, const double* grad_flow, double* grad_gx,
                                       double* grad_gy, double* grad_gsq, double* grad_rhoc, double* sums, int64_t N,
                                       int64_t H, int64_t W, int64_t K, double theta, double thr, double a,
                                       int num_threads) {
    backward_impl<double>(gx, gy, gsq, rhoc, saved, grad_flow, grad_gx, grad_gy, grad_gsq, grad_rhoc, sums, N, H, W,
                          K, theta, thr, a, num_threads);
}

// An empty module: Python never imports it, ctypes loads the shared object.
static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "_rep_flow_kernel",
                                           "Fused TV-L1 kernels for assemblenet.models.rep_flow (used via ctypes).",
                                           -1, nullptr};

PyMODINIT_FUNC PyInit__rep_flow_kernel(void) { return PyModule_Create(&kernel_module); }
