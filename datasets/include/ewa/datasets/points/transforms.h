// Seeded point-cloud augmentations and normalisations on PointCloudData (CPU tensor ops).
// Grid sampling and sphere crop live in pointcloud/ (point ops), not here.
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <ATen/core/Generator.h>

#include <cstdint>

namespace ewa::datasets {

/// A CPU generator for the transforms below (same seed -> same augmentation).
at::Generator make_point_generator(uint64_t seed);

/// Hashes (a, b, c) into one generator seed (FNV-1a with a golden-ratio mix), e.g. (run seed,
/// epoch, sample position): distinct triples give unrelated streams.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c);

/// Shifts coord so the bounding-box centre is at x=y=0 and (apply_z) the minimum z is 0.
void centre_shift(PointCloudData& c, bool apply_z = true);
/// Uniform scale in [lo,hi] (per axis when anisotropic).
void random_scale(PointCloudData& c, double lo, double hi, bool anisotropic, at::Generator& gen);
/// Flips x and y independently with probability p (normals too).
void random_flip(PointCloudData& c, double p, at::Generator& gen);
/// Adds N(0, sigma) noise clipped to [-clip, clip] to coord.
void random_jitter(PointCloudData& c, double sigma, double clip, at::Generator& gen);
/// Rotates about z by an angle uniform in [-max_angle, max_angle] (radians) around the
/// bounding-box centre (normals rotated too).
void random_rotate_z(PointCloudData& c, double max_angle, at::Generator& gen);
/// With probability p, stretches colour to the full [0,255] range per channel, blended
/// with the original by `blend` (< 0: random in [0,1)).
void chromatic_auto_contrast(PointCloudData& c, double p, double blend, at::Generator& gen);
/// With probability p, adds one random offset in [-ratio*255, ratio*255] per channel.
void chromatic_translation(PointCloudData& c, double p, double ratio, at::Generator& gen);
/// With probability p, adds N(0, std*255) per point and channel.
void chromatic_jitter(PointCloudData& c, double p, double std, at::Generator& gen);
/// With probability p, drops a random `ratio` of the points (all fields; `index` records
/// the kept original indices).
void random_dropout(PointCloudData& c, double ratio, double p, at::Generator& gen);

/// Colour as float32 [N,3]: c/255 ([0,1]) or, with `signed_range`, c/127.5-1 ([-1,1]).
torch::Tensor normalized_color(const PointCloudData& c, bool signed_range = false);
/// Centres coord on its centroid and scales it into the unit sphere (ModelNet style).
void normalize_coord(PointCloudData& c);

}  // namespace ewa::datasets
