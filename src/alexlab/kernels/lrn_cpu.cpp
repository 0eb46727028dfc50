// Local response normalization across channels (Krizhevsky et al. 2012, Section 3.3), fused for
// the CPU: one pass over the maps forward and one backward.
//
//   s_i = k + alpha * sum_{j in window(i)} a_j^2,   b_i = a_i * s_i^-beta
//   da_j = g_j s_j^-beta - 2 beta alpha a_j sum_{i in window(j)} g_i a_i s_i^(-beta-1)
//
// `alpha` arrives as the per-term factor (the paper's alpha, or cuda-convnet's alpha / size), so
// one kernel serves both formulas. Windows stop at their group's edges (the paper's columns).
// The backward pass recomputes s from a instead of saving it: reading a again costs less than
// writing and reading a saved tensor of the same size.
//
// The maps are cut into tiles (see Tiling) whose values are copied into float buffers, so that
// every arithmetic loop runs over contiguous lanes whatever the tensor's layout (NCHW or
// channels-last), and GCC vectorizes it.
//
// Portable and repeatable (setup.py): the build targets a baseline ISA (x86-64-v2), and the loops
// over tiles are compiled again for AVX2 and AVX-512, one of which is chosen at run time from
// what the CPU has (see Isa), so a build runs on any CPU of its architecture. No -ffast-math and
// no FMA contraction (-ffp-contract=off): the paper's beta takes only IEEE sqrt, division,
// multiplication and addition, lane by lane, which round alike at every vector width, so every
// path gives the same bits. (Other betas call glibc's powf, the same on every path, though glibc
// picks its own variant of it by CPU.)

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

// The flags setup.py (or a test's build) compiled this with, for build_info().
#ifndef ALEXLAB_BUILD_FLAGS
#define ALEXLAB_BUILD_FLAGS "unknown"
#endif

// The wider paths exist on x86-64 only, and not in a build that asks for its own ISA alone
// (ALEXLAB_NATIVE=1 in setup.py, or the baseline-only build of tests/test_lrn_kernels.py).
#if defined(__x86_64__) && !defined(ALEXLAB_ONE_PATH)
#define ALEXLAB_DISPATCH 1
#endif

namespace {

// The instruction sets the tile loops are compiled for; `baseline` is the build's own target.
enum class Isa : int { baseline, avx2, avx512 };
constexpr const char* kIsaNames[] = {"baseline", "avx2", "avx512"};

bool cpu_has(Isa isa) {
#ifdef ALEXLAB_DISPATCH
  // libgcc's checks include the OS's (XGETBV): the wider registers must be saved and restored.
  if (isa == Isa::avx512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  if (isa == Isa::avx2) return __builtin_cpu_supports("avx2");
#endif
  return isa == Isa::baseline;
}

Isa widest_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (cpu_has(isa)) return isa;
  return Isa::baseline;
}

// Chosen once at import; set_isa() changes it, so that tests and benchmarks can run each path.
std::atomic<Isa> chosen_isa{widest_isa()};

// Positions a tile: as channels-last rows, 16 (the buffers stay in L1); as NCHW lanes, 64 (wide
// enough that a row's loop is mostly whole vectors).
constexpr int64_t kRows = 16, kLanes = 64;

// A tile is one image, one group and up to `tile` positions, copied into float buffers as rows of
// contiguous values: NCHW gives a row per channel (lanes: positions), channels-last a row per
// position (lanes: channels). Either way every loop below runs over contiguous lanes, and a
// value's channel window is the values `step` apart in the buffer: a row apart for NCHW, a lane
// apart for channels-last. Buffers are padded with `half` zero rows (NCHW) or lanes (channels-
// last) on each side, so windows stop at the group's edges without a test.
struct Tiling {
  bool channels_last;
  int64_t batch, positions, groups, per_group, half;
  int64_t image_stride, channel_stride, position_stride;  // in the tensor
  int64_t tile;                                            // positions a tile
  int64_t pitch, origin, step, buffer_size;                // in the padded buffers

  Tiling(const at::Tensor& a, int64_t groups_, int64_t size)
      : channels_last(a.stride(1) == 1),  // or NCHW with 1x1 maps: the same memory
        batch(a.size(0)),
        positions(a.size(2) * a.size(3)),
        groups(groups_),
        per_group(a.size(1) / groups_),
        half(size / 2),
        image_stride(a.size(1) * positions),
        channel_stride(channels_last ? 1 : positions),
        position_stride(channels_last ? a.size(1) : 1),
        tile(channels_last ? kRows : kLanes),
        pitch(channels_last ? per_group + 2 * half : kLanes),
        origin(channels_last ? half : half * kLanes),
        step(channels_last ? 1 : kLanes),
        buffer_size(channels_last ? kRows * pitch : (per_group + 2 * half) * kLanes) {}

  // rows and lanes of a tile of `count` positions, and the tensor's stride between its rows
  int64_t rows(int64_t count) const { return channels_last ? count : per_group; }
  int64_t lanes(int64_t count) const { return channels_last ? per_group : count; }
  int64_t row_stride() const { return channels_last ? position_stride : channel_stride; }
};

at::Tensor dense(const at::Tensor& t) {
  if (t.is_contiguous() || t.is_contiguous(at::MemoryFormat::ChannelsLast)) return t;
  return t.contiguous();
}

// Copies a tile into x (float) and, with_squares, the squares of its values into `squares`, in
// the same loop (a second pass over the row cost the forward kernel a fifth of its time).
template <bool with_squares, typename scalar_t, typename acc_t>
[[gnu::always_inline]] inline void load(const scalar_t* src, const Tiling& t, int64_t count,
                                        acc_t* x, acc_t* squares) {
  const int64_t rows = t.rows(count), lanes = t.lanes(count);
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* in = src + r * t.row_stride();
    const int64_t row = t.origin + r * t.pitch;
    for (int64_t q = 0; q < lanes; ++q) {
      x[row + q] = static_cast<acc_t>(in[q]);
      if constexpr (with_squares) squares[row + q] = x[row + q] * x[row + q];
    }
  }
}

// The total of a padded buffer's values over the window centred at `at`. kHalf: the window's
// half width when it is known at compile time (2, the paper's size 5), so that the loop unrolls
// into the vectorized loop around it; -1: `half` at run time.
template <int kHalf, typename acc_t>
[[gnu::always_inline]] inline acc_t window_total(const acc_t* at, int64_t step, int64_t half) {
  if constexpr (kHalf >= 0) {
    return [&]<int... d>(std::integer_sequence<int, d...>) {
      return (at[(d - kHalf) * step] + ...);
    }(std::make_integer_sequence<int, 2 * kHalf + 1>{});
  } else {
    acc_t total = 0;
    for (int64_t d = -half; d <= half; ++d) total += at[d * step];
    return total;
  }
}

// {s^-beta, 1 / s}. For the paper's beta, 3/4 (every config of the paper and of cuda-convnet):
// s^-3/4 = 1 / (sqrt(s) sqrt(sqrt(s))), square roots and a division, each correctly rounded and
// vectorized (within 2 ulp of s^-3/4), where glibc's pow runs a scalar call per value.
template <bool three_quarters, typename acc_t>
[[gnu::always_inline]] inline std::pair<acc_t, acc_t> inverse_powers(acc_t s, acc_t beta) {
  if constexpr (three_quarters) {
    const acc_t root = std::sqrt(s);
    return {acc_t(1) / (root * std::sqrt(root)), acc_t(1) / s};
  } else {
    return {std::pow(s, -beta), acc_t(1) / s};
  }
}

// Tiles [begin, end) of the maps: body(buffers, positions in the tile, offset of its first
// element) for each. Inlined, with body and the helpers above, into each tiles_ISA() below, so
// that their loops are compiled for that ISA.
template <typename acc_t, typename Body>
[[gnu::always_inline]] inline void tiles(const Tiling& t, int64_t begin, int64_t end,
                                         acc_t* memory, const Body& body) {
  const int64_t blocks = (t.positions + t.tile - 1) / t.tile;
  for (int64_t i = begin; i < end; ++i) {
    // Channels-last: a block's groups one after the other, as they share cache lines.
    const int64_t image = i / (t.groups * blocks);
    const int64_t group = t.channels_last ? i % t.groups : i / blocks % t.groups;
    const int64_t first = (t.channels_last ? i / t.groups % blocks : i % blocks) * t.tile;
    const int64_t offset = image * t.image_stride + group * t.per_group * t.channel_stride +
                           first * t.position_stride;
    body(memory, std::min(t.tile, t.positions - first), offset);
  }
}

// The same loop compiled for each Isa. Their targets name ISA extensions, not an arch=: GCC
// inlines no function into one of another arch.
template <typename acc_t, typename Body>
void tiles_baseline(const Tiling& t, int64_t begin, int64_t end, acc_t* memory, const Body& body) {
  tiles(t, begin, end, memory, body);
}

#ifdef ALEXLAB_DISPATCH
template <typename acc_t, typename Body>
[[gnu::target("avx2")]] void tiles_avx2(const Tiling& t, int64_t begin, int64_t end,
                                        acc_t* memory, const Body& body) {
  tiles(t, begin, end, memory, body);
}

template <typename acc_t, typename Body>
[[gnu::target("avx512f,avx512vl,avx512bw,avx512dq")]] void tiles_avx512(
    const Tiling& t, int64_t begin, int64_t end, acc_t* memory, const Body& body) {
  tiles(t, begin, end, memory, body);
}
#endif

// Runs body on every tile, in parallel over ATen's intra-op threads (torch.set_num_threads), on
// the chosen Isa's path. Each thread's chunk of tiles gets its own zeroed buffers; the pads stay
// zero because nothing writes them.
template <typename acc_t, typename Body>
void for_each_tile(const Tiling& t, int buffers, const Body& body) {
  const int64_t blocks = (t.positions + t.tile - 1) / t.tile;
  const Isa isa = chosen_isa.load(std::memory_order_relaxed);
  at::parallel_for(0, t.batch * t.groups * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> memory(buffers * t.buffer_size, acc_t(0));
    switch (isa) {
#ifdef ALEXLAB_DISPATCH
      case Isa::avx512:
        return tiles_avx512(t, begin, end, memory.data(), body);
      case Isa::avx2:
        return tiles_avx2(t, begin, end, memory.data(), body);
#endif
      default:
        return tiles_baseline(t, begin, end, memory.data(), body);
    }
  });
}

template <typename scalar_t, typename acc_t, bool three_quarters, int kHalf>
void forward_kernel(const at::Tensor& a, at::Tensor& b, const Tiling& t, acc_t alpha, acc_t beta,
                    acc_t k) {
  const scalar_t* in = a.data_ptr<scalar_t>();
  scalar_t* out = b.data_ptr<scalar_t>();
  // always_inline: its loops are compiled within each tiles_ISA().
  for_each_tile<acc_t>(t, 2, [&](acc_t* memory, int64_t count, int64_t offset)
                                  __attribute__((always_inline)) {
    // Disjoint buffers; saying so lets GCC vectorize without run-time overlap checks.
    acc_t* __restrict__ x = memory;
    acc_t* __restrict__ squares = x + t.buffer_size;
    const int64_t rows = t.rows(count), lanes = t.lanes(count), step = t.step, half = t.half;
    load<true>(in + offset, t, count, x, squares);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = t.origin + r * t.pitch;
      scalar_t* __restrict__ b_row = out + offset + r * t.row_stride();
      for (int64_t q = 0; q < lanes; ++q) {
        const acc_t s = k + alpha * window_total<kHalf>(squares + row + q, step, half);
        const acc_t scale = inverse_powers<three_quarters>(s, beta).first;
        b_row[q] = static_cast<scalar_t>(x[row + q] * scale);
      }
    }
  });
}

template <typename scalar_t, typename acc_t, bool three_quarters, int kHalf>
void backward_kernel(const at::Tensor& a, const at::Tensor& grad_b, at::Tensor& grad_a,
                     const Tiling& t, acc_t alpha, acc_t beta, acc_t k) {
  const scalar_t* in = a.data_ptr<scalar_t>();
  const scalar_t* grad_in = grad_b.data_ptr<scalar_t>();
  scalar_t* grad_out = grad_a.data_ptr<scalar_t>();
  const acc_t factor = -2 * beta * alpha;
  for_each_tile<acc_t>(t, 4, [&](acc_t* memory, int64_t count, int64_t offset)
                                  __attribute__((always_inline)) {
    acc_t* __restrict__ x = memory;
    acc_t* __restrict__ g = x + t.buffer_size;
    acc_t* __restrict__ squares = g + t.buffer_size;
    acc_t* __restrict__ through = squares + t.buffer_size;
    const int64_t rows = t.rows(count), lanes = t.lanes(count), step = t.step, half = t.half;
    load<true>(in + offset, t, count, x, squares);
    load<false>(grad_in + offset, t, count, g, static_cast<acc_t*>(nullptr));
    // through_i = g_i a_i s_i^(-beta-1); g_i becomes g_i s_i^-beta
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = t.origin + r * t.pitch;
      const acc_t* __restrict__ x_row = x + row;
      const acc_t* __restrict__ squares_row = squares + row;
      acc_t* __restrict__ g_row = g + row;
      acc_t* __restrict__ through_row = through + row;
      // Two loops, not one: GCC vectorizes each but not their fusion.
      for (int64_t q = 0; q < lanes; ++q)
        through_row[q] = k + alpha * window_total<kHalf>(squares_row + q, step, half);
      for (int64_t q = 0; q < lanes; ++q) {
        const auto [scale, reciprocal] = inverse_powers<three_quarters>(through_row[q], beta);
        through_row[q] = g_row[q] * x_row[q] * scale * reciprocal;
        g_row[q] *= scale;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = t.origin + r * t.pitch;
      const acc_t* __restrict__ x_row = x + row;
      const acc_t* __restrict__ g_row = g + row;
      const acc_t* __restrict__ through_row = through + row;
      scalar_t* __restrict__ grad_row = grad_out + offset + r * t.row_stride();
      for (int64_t q = 0; q < lanes; ++q) {
        const acc_t total = window_total<kHalf>(through_row + q, step, half);
        grad_row[q] = static_cast<scalar_t>(g_row[q] + factor * x_row[q] * total);
      }
    }
  });
}

// Runs kernel.template operator()<three_quarters, kHalf>() with the compile-time constants that
// fit beta and size: the paper's 0.75 and 5 get the fast paths, anything else the general ones.
template <typename Kernel>
void dispatch_shape(double beta, int64_t size, const Kernel& kernel) {
  if (beta == 0.75 && size == 5) return kernel.template operator()<true, 2>();
  if (beta == 0.75) return kernel.template operator()<true, -1>();
  if (size == 5) return kernel.template operator()<false, 2>();
  kernel.template operator()<false, -1>();
}

void check(const at::Tensor& a, int64_t size, int64_t groups) {
  TORCH_CHECK(a.device().is_cpu(), "lrn_cpu: expected a CPU tensor");
  TORCH_CHECK(a.dim() == 4, "lrn_cpu: expected maps of shape (N, C, H, W), got ", a.sizes());
  TORCH_CHECK(size > 0 && size % 2 == 1, "lrn_cpu: size must be odd and positive, got ", size);
  TORCH_CHECK(groups > 0 && a.size(1) % groups == 0, "lrn_cpu: ", a.size(1),
              " channels do not split into ", groups, " groups");
}

}  // namespace

at::Tensor lrn_forward(const at::Tensor& input, int64_t size, double alpha, double beta, double k,
                       int64_t groups) {
  check(input, size, groups);
  const at::Tensor a = dense(input);
  at::Tensor b = at::empty_like(a);
  const Tiling t(a, groups, size);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, a.scalar_type(), "lrn_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_shape(beta, size, [&]<bool three_quarters, int kHalf>() {
      forward_kernel<scalar_t, acc_t, three_quarters, kHalf>(a, b, t, alpha, beta, k);
    });
  });
  return b;
}

at::Tensor lrn_backward(const at::Tensor& input, const at::Tensor& grad_output, int64_t size,
                        double alpha, double beta, double k, int64_t groups) {
  check(input, size, groups);
  TORCH_CHECK(grad_output.sizes() == input.sizes(), "lrn_cpu: gradient of shape ",
              grad_output.sizes(), " for maps of shape ", input.sizes());
  const at::Tensor a = dense(input);
  // The gradient is read in the maps' layout, whatever layout autograd hands it in.
  const at::Tensor grad_b =
      grad_output.to(a.scalar_type()).contiguous(a.suggest_memory_format());
  at::Tensor grad_a = at::empty_like(a);
  const Tiling t(a, groups, size);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, a.scalar_type(), "lrn_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_shape(beta, size, [&]<bool three_quarters, int kHalf>() {
      backward_kernel<scalar_t, acc_t, three_quarters, kHalf>(a, grad_b, grad_a, t, alpha, beta,
                                                              k);
    });
  });
  return grad_a;
}

std::vector<std::string> isas() {
  std::vector<std::string> names;
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (cpu_has(isa)) names.emplace_back(kIsaNames[static_cast<int>(isa)]);
  return names;
}

void set_isa(const std::string& name) {
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (name == kIsaNames[static_cast<int>(isa)] && cpu_has(isa)) return chosen_isa.store(isa);
  TORCH_CHECK(false, "lrn_cpu: no path \"", name, "\" in this build on this CPU; it has ",
              c10::Join(", ", isas()));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lrn_forward, "fused LRN forward (CPU)");
  m.def("backward", &lrn_backward, "fused LRN backward (CPU)");
  m.def("build_flags", [] { return std::string(ALEXLAB_BUILD_FLAGS); },
        "the compiler flags this extension was built with");
  m.def("isa", [] { return std::string(kIsaNames[static_cast<int>(chosen_isa.load())]); },
        "the path the kernels run: baseline (the build's target), avx2 or avx512");
  m.def("isas", &isas, "the paths this build has that this CPU can run");
  m.def("set_isa", &set_isa, "run the kernels on another of isas()");
}
