// Procedural synthetic indoor rooms in the raw S3DIS layout (for smoke tests, benchmarks
// and the embedded demo). Geometry: axis-aligned boxes and wall rectangles with holes.
#include "ewa/datasets/points/synth_rooms.h"

#include "util.h"

#include <array>
#include <cmath>
#include <map>
#include <random>

namespace ewa::datasets {

using namespace detail;

namespace {

using Vec3 = std::array<double, 3>;

struct Hole {
  double s0, s1, z0, z1;  // in wall coordinates (along-wall, height)
};

struct Instance {
  std::string cls;
  std::vector<float> xyz;
  std::vector<uint8_t> rgb;
};

class RoomBuilder {
 public:
  RoomBuilder(uint64_t seed, const SynthRoomsOptions& opt) : rng_(seed), opt_(opt) {}

  double uni(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int uni_int(int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng_); }

  Instance& begin(const std::string& cls, std::array<int, 3> base) {
    instances_.push_back({cls, {}, {}});
    int tint = uni_int(-15, 15);
    for (int c = 0; c < 3; ++c) tint_[c] = std::clamp(base[c] + tint + uni_int(-6, 6), 0, 255);
    return instances_.back();
  }

  void add_point(Instance& in, const Vec3& p) {
    std::normal_distribution<double> noise(0.0, opt_.noise);
    for (int c = 0; c < 3; ++c) in.xyz.push_back(static_cast<float>(p[c] + noise(rng_)));
    for (int c = 0; c < 3; ++c) in.rgb.push_back(static_cast<uint8_t>(std::clamp(tint_[c] + uni_int(-8, 8), 0, 255)));
  }

  // Rectangle o + a*u + b*v (a,b in [0,1]); points falling in `holes` (in (a*|u|, b*|v|)) dropped.
  void rect(Instance& in, const Vec3& o, const Vec3& u, const Vec3& v, const std::vector<Hole>& holes = {}) {
    double lu = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    double lv = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    double expected = lu * lv * opt_.density;
    int64_t n = static_cast<int64_t>(expected) + (uni(0, 1) < expected - std::floor(expected) ? 1 : 0);
    for (int64_t i = 0; i < n; ++i) {
      double a = uni(0, 1), b = uni(0, 1);
      bool in_hole = false;
      for (const auto& h : holes) {
        if (a * lu >= h.s0 && a * lu <= h.s1 && b * lv >= h.z0 && b * lv <= h.z1) in_hole = true;
      }
      if (in_hole) continue;
      add_point(in, {o[0] + a * u[0] + b * v[0], o[1] + a * u[1] + b * v[1], o[2] + a * u[2] + b * v[2]});
    }
  }

  // Axis-aligned box [x0,x1]x[y0,y1]x[z0,z1]; bottom face skipped when it rests on the floor.
  void box(Instance& in, double x0, double y0, double z0, double x1, double y1, double z1) {
    double dx = x1 - x0, dy = y1 - y0, dz = z1 - z0;
    rect(in, {x0, y0, z1}, {dx, 0, 0}, {0, dy, 0});
    if (z0 > 0.01) rect(in, {x0, y0, z0}, {dx, 0, 0}, {0, dy, 0});
    rect(in, {x0, y0, z0}, {dx, 0, 0}, {0, 0, dz});
    rect(in, {x0, y1, z0}, {dx, 0, 0}, {0, 0, dz});
    rect(in, {x0, y0, z0}, {0, dy, 0}, {0, 0, dz});
    rect(in, {x1, y0, z0}, {0, dy, 0}, {0, 0, dz});
  }

  std::vector<Instance> build() {
    instances_.reserve(256);  // begin() hands out references into this vector
    const double W = uni(5, 9), D = uni(4, 8), H = uni(2.8, 3.4);
    // Walls: 0 (y=0, along x), 1 (x=W, along y), 2 (y=D, along x), 3 (x=0, along y).
    std::array<double, 4> len = {W, D, W, D};
    std::array<std::vector<Hole>, 4> holes;
    std::array<std::vector<std::pair<std::string, Hole>>, 4> insets;
    auto place = [&](int wall, double w, double z0, double z1, const std::string& cls) {
      for (int tries = 0; tries < 20; ++tries) {
        double s0 = uni(0.6, std::max(0.7, len[wall] - w - 0.6));
        Hole h{s0, s0 + w, z0, z1};
        bool clash = false;
        for (const auto& o : holes[wall]) clash = clash || !(h.s1 + 0.2 < o.s0 || o.s1 + 0.2 < h.s0);
        if (clash) continue;
        holes[wall].push_back(h);
        insets[wall].push_back({cls, h});
        return;
      }
    };
    place(0, 0.9, 0.0, 2.1, "door");
    place(1, uni(1.2, 2.0), 0.9, 2.1, "window");
    if (uni(0, 1) < 0.6) place(2, uni(1.0, 1.8), 0.9, 2.1, "window");
    place(3, uni(1.5, 2.5), 0.9, 2.0, "board");

    auto wall_frame = [&](int wall, double offset, Vec3& o, Vec3& u, Vec3& n) {
      // offset > 0 moves into the room
      switch (wall) {
        case 0: o = {0, offset, 0}; u = {1, 0, 0}; n = {0, 1, 0}; break;
        case 1: o = {W - offset, 0, 0}; u = {0, 1, 0}; n = {-1, 0, 0}; break;
        case 2: o = {0, D - offset, 0}; u = {1, 0, 0}; n = {0, -1, 0}; break;
        default: o = {offset, 0, 0}; u = {0, 1, 0}; n = {1, 0, 0}; break;
      }
    };
    {
      auto& f = begin("floor", {125, 105, 85});
      rect(f, {0, 0, 0}, {W, 0, 0}, {0, D, 0});
      auto& c = begin("ceiling", {222, 222, 215});
      rect(c, {0, 0, H}, {W, 0, 0}, {0, D, 0});
    }
    for (int w = 0; w < 4; ++w) {
      Vec3 o, u, n;
      wall_frame(w, 0, o, u, n);
      auto& in = begin("wall", {200, 195, 185});
      rect(in, o, {u[0] * len[w], u[1] * len[w], 0}, {0, 0, H}, holes[w]);
      for (const auto& [cls, h] : insets[w]) {
        double off = cls == "board" ? 0.02 : (cls == "window" ? -0.05 : -0.03);
        Vec3 o2;
        wall_frame(w, off, o2, u, n);
        std::array<int, 3> col = cls == "door" ? std::array<int, 3>{140, 90, 50}
                                : cls == "window" ? std::array<int, 3>{150, 180, 210}
                                                  : std::array<int, 3>{236, 236, 236};
        auto& ins = begin(cls, col);
        Vec3 start = {o2[0] + u[0] * h.s0, o2[1] + u[1] * h.s0, h.z0};
        double w_len = h.s1 - h.s0;
        rect(ins, start, {u[0] * w_len, u[1] * w_len, 0}, {0, 0, h.z1 - h.z0});
      }
    }
    {  // beam across the ceiling, column in a corner
      auto& b = begin("beam", {190, 186, 180});
      double y = uni(1.0, D - 1.0);
      rect(b, {0, y - 0.15, H - 0.4}, {W, 0, 0}, {0, 0.3, 0});
      rect(b, {0, y - 0.15, H - 0.4}, {W, 0, 0}, {0, 0, 0.4});
      rect(b, {0, y + 0.15, H - 0.4}, {W, 0, 0}, {0, 0, 0.4});
      auto& c = begin("column", {182, 178, 170});
      double cx = uni(0, 1) < 0.5 ? 0.0 : W - 0.45;
      rect(c, {cx, D - 0.45, 0}, {0.45, 0, 0}, {0, 0, H});
      rect(c, {cx + (cx > 0 ? 0 : 0.45), D - 0.45, 0}, {0, 0.45, 0}, {0, 0, H});
    }
    // Furniture kept inside [0.8, W-0.8] x [0.8, D-0.8].
    int tables = uni_int(1, 3);
    std::vector<std::array<double, 4>> tops;  // x0,y0,x1,y1 of table tops (clutter goes there)
    for (int t = 0; t < tables; ++t) {
      double tw = uni(1.2, 1.8), td = uni(0.6, 0.9), th = uni(0.72, 0.76);
      double x0 = uni(0.8, std::max(0.9, W - 0.8 - tw)), y0 = uni(0.8, std::max(0.9, D - 0.8 - td));
      auto& in = begin("table", {165, 125, 85});
      box(in, x0, y0, th - 0.04, x0 + tw, y0 + td, th);
      const double legs[4][2] = {{x0, y0}, {x0 + tw - 0.05, y0}, {x0, y0 + td - 0.05}, {x0 + tw - 0.05, y0 + td - 0.05}};
      for (const auto& l : legs) box(in, l[0], l[1], 0, l[0] + 0.05, l[1] + 0.05, th - 0.04);
      tops.push_back({x0, y0, x0 + tw, y0 + td});
      int chairs = uni_int(1, 3);
      for (int c = 0; c < chairs; ++c) {
        double cx = x0 + uni(0, tw - 0.45), cy = uni(0, 1) < 0.5 ? y0 - 0.55 : y0 + td + 0.1;
        auto& ch = begin("chair", {60, 62, 72});
        box(ch, cx, cy, 0.42, cx + 0.45, cy + 0.45, 0.47);
        double by = cy < y0 ? cy : cy + 0.4;
        box(ch, cx, by, 0.47, cx + 0.45, by + 0.05, 0.95);
        const double chair_legs[4][2] = {{cx, cy}, {cx + 0.41, cy}, {cx, cy + 0.41}, {cx + 0.41, cy + 0.41}};
        for (const auto& l : chair_legs) box(ch, l[0], l[1], 0, l[0] + 0.04, l[1] + 0.04, 0.42);
      }
    }
    {  // sofa against wall 2
      double sw = uni(1.6, 2.2), x0 = uni(0.6, std::max(0.7, W - 0.6 - sw));
      auto& s = begin("sofa", {105, 45, 45});
      box(s, x0, D - 0.9, 0, x0 + sw, D - 0.1, 0.42);
      box(s, x0, D - 0.3, 0.42, x0 + sw, D - 0.1, 0.85);
    }
    int cases = uni_int(1, 2);
    for (int b = 0; b < cases; ++b) {  // bookcases against wall 1 with shelves
      double bw = uni(0.9, 1.6), bh = uni(1.8, 2.2), y0 = uni(0.5, std::max(0.6, D - 0.5 - bw));
      auto& bc = begin("bookcase", {130, 100, 72});
      double x0 = W - 0.4, x1 = W - 0.05;
      box(bc, x0, y0, 0, x1, y0 + bw, bh);
      for (double z = 0.4; z < bh - 0.1; z += 0.4) rect(bc, {x0 - 0.01, y0, z}, {0, bw, 0}, {0.35, 0, 0});
    }
    int clutter = uni_int(4, 8);
    for (int c = 0; c < clutter; ++c) {
      double s = uni(0.08, 0.35), h = uni(0.05, 0.4);
      double x0, y0, z0 = 0;
      if (!tops.empty() && uni(0, 1) < 0.6) {
        const auto& t = tops[static_cast<size_t>(uni_int(0, static_cast<int>(tops.size()) - 1))];
        x0 = uni(t[0], std::max(t[0] + 0.01, t[2] - s));
        y0 = uni(t[1], std::max(t[1] + 0.01, t[3] - s));
        z0 = 0.77;
      } else {
        x0 = uni(0.3, W - 0.3 - s);
        y0 = uni(0.3, D - 0.3 - s);
      }
      auto& cl = begin("clutter", {uni_int(40, 220), uni_int(40, 220), uni_int(40, 220)});
      box(cl, x0, y0, z0, x0 + s, y0 + s, z0 + h);
    }
    // Shift the room to a random origin, like S3DIS' building coordinates.
    double ox = uni(-20, 20), oy = uni(-20, 20);
    for (auto& in : instances_) {
      for (size_t i = 0; i < in.xyz.size(); i += 3) {
        in.xyz[i] += static_cast<float>(ox);
        in.xyz[i + 1] += static_cast<float>(oy);
      }
    }
    return std::move(instances_);
  }

 private:
  std::mt19937_64 rng_;
  SynthRoomsOptions opt_;
  std::vector<Instance> instances_;
  std::array<int, 3> tint_{};
};

// Appends v with 3 decimals (S3DIS style) without printf.
void put_fixed3(std::string& s, float v) {
  int64_t m = std::llround(static_cast<double>(v) * 1000.0);
  if (m < 0) {
    s += '-';
    m = -m;
  }
  s += std::to_string(m / 1000);
  s += '.';
  int64_t f = m % 1000;
  s += static_cast<char>('0' + f / 100);
  s += static_cast<char>('0' + (f / 10) % 10);
  s += static_cast<char>('0' + f % 10);
}

std::string to_text(const Instance& in) {
  std::string s;
  s.reserve(in.xyz.size() * 12);
  for (size_t i = 0; i < in.xyz.size() / 3; ++i) {
    for (int c = 0; c < 3; ++c) {
      put_fixed3(s, in.xyz[3 * i + c]);
      s += ' ';
    }
    s += std::to_string(in.rgb[3 * i]) + ' ' + std::to_string(in.rgb[3 * i + 1]) + ' ' +
         std::to_string(in.rgb[3 * i + 2]) + '\n';
  }
  return s;
}

}  // namespace

SynthRoomsSummary synth_rooms(const std::string& out_root, int n_rooms, uint64_t seed, const SynthRoomsOptions& options) {
  TORCH_CHECK(n_rooms > 0, "synth_rooms: n_rooms must be positive");
  TORCH_CHECK(options.density > 0, "synth_rooms: density must be positive");
  fs::path root(out_root);
  fs::create_directories(root);
  write_file_atomic(root / "README.txt",
                    "SYNTHETIC DATA - NOT S3DIS.\n"
                    "Procedural indoor rooms generated by ewa-vision synth_rooms (seed " + std::to_string(seed) +
                        ", " + std::to_string(n_rooms) + " rooms, density " + std::to_string(options.density) +
                        " points/m^2).\nLaid out like the raw S3DIS release (Area_N/<room>/<room>.txt and "
                        "Annotations/<class>_<i>.txt, lines 'x y z r g b') so the same readers apply.\n"
                        "Boxes and rectangles with Gaussian noise; numbers measured on it say nothing about "
                        "real S3DIS accuracy.\n");
  SynthRoomsSummary sum;
  sum.room_dirs.resize(static_cast<size_t>(n_rooms));
  std::vector<int64_t> points(static_cast<size_t>(n_rooms)), bytes(static_cast<size_t>(n_rooms));
  parallel_tasks(n_rooms, options.threads, [&](int64_t k) {
    std::string name = "room_" + std::to_string(k + 1);
    fs::path dir = root / ("Area_" + std::to_string(options.area)) / name;
    fs::create_directories(dir / "Annotations");
    RoomBuilder b(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(k) * 7919 + 1, options);
    auto insts = b.build();
    std::map<std::string, int> counter;
    std::string all;
    for (const auto& in : insts) {
      std::string text = to_text(in);
      write_file_atomic(dir / "Annotations" / (in.cls + "_" + std::to_string(++counter[in.cls]) + ".txt"), text);
      points[k] += static_cast<int64_t>(in.xyz.size() / 3);
      bytes[k] += static_cast<int64_t>(text.size());
      all += text;
    }
    write_file_atomic(dir / (name + ".txt"), all);
    sum.room_dirs[k] = dir.string();
  });
  for (int k = 0; k < n_rooms; ++k) {
    sum.points += points[k];
    sum.bytes += bytes[k];
  }
  return sum;
}

}  // namespace ewa::datasets
