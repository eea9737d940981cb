// Natural ordering of names ("wall_2" < "wall_10", leading zeros ignored): how every reader
// and pipeline lists rooms, annotation files and scenes, so orders agree everywhere.
#pragma once

#include <string>

namespace ewa::datasets {

/// True when `a` sorts before `b` comparing digit runs by numeric value.
bool natural_less(const std::string& a, const std::string& b);

}  // namespace ewa::datasets
