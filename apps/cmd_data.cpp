// `ewa data prepare s3dis RAW OUT` (parallel, resumable HDF5 room cache with a progress bar)
// , `ewa data synth-rooms OUT --rooms N` (procedural rooms in the raw S3DIS layout) and
// `ewa data info PATH...` (any point format of the shared table, summarised).
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>

#include "commands.h"
#include "ewa/core/progress.h"
#include "ewa/core/runtime.h"
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/synth_rooms.h"

namespace fs = std::filesystem;

namespace ewa::app {

namespace {

void add_prepare(CLI::App& data, GlobalOptions& global) {
  auto* prepare = data.add_subcommand("prepare", "Convert a raw dataset into the training cache");
  prepare->require_subcommand(1);
  struct Args {
    std::string raw, out, format = "auto";
    int jobs = 0;
    std::vector<int> areas;
    bool overwrite = false, quiet = false;
    int max_issues = 10;
    bool refuse_non_finite = false;
  };
  auto args = std::make_shared<Args>();
  auto* s3dis = prepare->add_subcommand(
      "s3dis",
      "S3DIS raw layout (Area_N/<room>/Annotations/*.txt) -> OUT/Area_N/<room>.h5 (coord, color, segment,\n"
      "instance); parallel over rooms, resumable (rooms already prepared are skipped)");
  s3dis->add_option("raw", args->raw, "Stanford3dDataset_v1.2[_Aligned_Version] folder (holds Area_1 ...)")
      ->required()
      ->check(CLI::ExistingDirectory);
  s3dis->add_option("out", args->out, "Output folder")->required();
  s3dis->add_option("--format", args->format,
                    "aligned (no rotation) | v1.2 (rotate by Area_N_alignmentAngle.txt) | auto (rotate when the "
                    "angle file exists)")
      ->check(CLI::IsMember({"auto", "aligned", "v1.2"}))
      ->capture_default_str();
  s3dis->add_option("-j,--jobs", args->jobs, "Rooms in parallel (0 = all cores)")->check(CLI::NonNegativeNumber);
  s3dis->add_option("--areas", args->areas, "Only these areas (e.g. --areas 1 2 5)")->expected(1, 6);
  s3dis->add_flag("--overwrite", args->overwrite, "Rewrite rooms that are already prepared");
  s3dis->add_flag("-q,--quiet", args->quiet, "No progress bar");
  s3dis->add_option("--max-issues", args->max_issues, "Damaged lines listed in the summary (the first ones)")
      ->capture_default_str();
  s3dis->add_flag("--refuse-non-finite", args->refuse_non_finite,
                  "Fail a room with a NaN/Inf (or beyond float range) coordinate instead of dropping the line");
  s3dis->callback([&global, args] {
    apply_global_options(global);
    if (!datasets::have_hdf5()) throw std::runtime_error("data prepare s3dis: this build has no HDF5 (EWA_WITH_HDF5)");
    datasets::S3disPrepareOptions o;
    o.threads = args->jobs > 0 ? args->jobs : hardware_threads();
    o.areas = args->areas;
    o.overwrite = args->overwrite;
    o.read.apply_alignment = args->format != "aligned";
    o.read.refuse_non_finite = args->refuse_non_finite;
    if (args->format == "v1.2") {
      bool any = false;
      for (int a = 1; a <= 6; ++a) {
        any = any || fs::exists(fs::path(args->raw) / ("Area_" + std::to_string(a)) /
                                ("Area_" + std::to_string(a) + "_alignmentAngle.txt"));
      }
      if (!any) {
        throw UsageError("data prepare s3dis: --format v1.2 but no Area_N/Area_N_alignmentAngle.txt under " +
                         args->raw);
      }
    }
    std::unique_ptr<ProgressBar> bar;
    int64_t points = 0;
    o.progress = [&](const datasets::S3disPrepareProgress& p) {
      if (args->quiet) return;
      if (!bar) bar = std::make_unique<ProgressBar>(p.total, "prepare", "room");
      points += p.points;
      bar->update(1, {{"Mpts", static_cast<double>(points) / 1e6}});
    };
    fs::create_directories(args->out);
    const auto s = datasets::prepare_s3dis(args->raw, args->out, o);
    if (bar) bar->finish();
    std::cout << "rooms: " << s.rooms << " found, " << s.rooms_written << " written, " << s.rooms_skipped
              << " already prepared, " << s.failed.size() << " failed; " << s.points << " points written\n";
    if (s.repaired_lines > 0 || s.skipped_lines > 0) {
      std::cout << "damaged lines: " << s.repaired_lines << " repaired, " << s.skipped_lines << " skipped";
      if (s.non_finite_lines > 0) std::cout << " (" << s.non_finite_lines << " with non-finite coordinates)";
      std::cout << "\n";
      // The library keeps the first few damaged lines; the rest are only counted.
      int64_t shown = 0;
      for (const auto& issue : s.issues) {
        if (shown >= args->max_issues) break;
        std::cout << "  " << issue.to_string() << "\n";
        ++shown;
      }
      const int64_t more = s.repaired_lines + s.skipped_lines - shown;
      if (more > 0) std::cout << "  ... " << more << " more\n";
    }
    // one line per failed room (prepare_s3dis keeps the first line of each error, no backtrace)
    for (const auto& [room, msg] : s.failed) std::cerr << "failed: " << room << ": " << msg << "\n";
    if (s.rooms == 0) throw std::runtime_error("data prepare s3dis: no rooms (Area_N/<room>/Annotations) under " + args->raw);
    if (!s.failed.empty()) {
      std::cerr << "ewa: error: " << s.failed.size() << " rooms failed (nothing written for them); rerun to retry\n";
      throw ExitCode(1);
    }
    std::cout << "cache: " << args->out << "\n";
  });
}

void add_synth_rooms(CLI::App& data, GlobalOptions& global) {
  struct Args {
    std::string out;
    int rooms = 4;
    int areas = 0;
    uint64_t seed = 0;
    double density = 500;
    double noise = 0.005;
    int jobs = 0;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = data.add_subcommand(
      "synth-rooms",
      "Write procedural indoor rooms (SYNTHETIC, all 13 S3DIS classes) in the raw S3DIS layout:\n"
      "OUT/Area_<a>/room_<k>/Annotations/<class>_<i>.txt; rooms are spread over --areas areas");
  cmd->add_option("out", args->out, "Output folder")->required();
  cmd->add_option("--rooms", args->rooms, "Number of rooms")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--areas", args->areas, "Areas Area_1..Area_A the rooms are spread over (default: 2, or 1 for one room)")
      ->check(CLI::Range(1, 6));
  cmd->add_option("--seed", args->seed, "Random seed (same seed, same rooms)")->capture_default_str();
  cmd->add_option("--density", args->density, "Surface points per square metre")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--noise", args->noise, "Gaussian sensor noise (metres)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("-j,--jobs", args->jobs, "Rooms written in parallel (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([&global, args] {
    apply_global_options(global);
    const int areas = args->areas > 0 ? args->areas : std::min(2, args->rooms);
    if (areas > args->rooms) throw UsageError("data synth-rooms: --areas " + std::to_string(areas) + " needs at least as many rooms");
    int64_t points = 0, bytes = 0, rooms = 0;
    for (int a = 1; a <= areas; ++a) {
      const int n = args->rooms / areas + (a <= args->rooms % areas ? 1 : 0);
      datasets::SynthRoomsOptions o;
      o.area = a;
      o.density = args->density;
      o.noise = args->noise;
      o.threads = args->jobs;
      const auto s = datasets::synth_rooms(args->out, n, args->seed * 7919 + static_cast<uint64_t>(a), o);
      points += s.points;
      bytes += s.bytes;
      rooms += static_cast<int64_t>(s.room_dirs.size());
      std::cout << "Area_" << a << ": " << s.room_dirs.size() << " rooms\n";
    }
    std::cout << "wrote " << rooms << " SYNTHETIC rooms (" << points << " points, " << bytes / (1 << 20)
              << " MiB of text) under " << args->out << "\nnext: ewa data prepare s3dis " << args->out << " "
              << args->out << "-cache\n";
  });
}

void add_info(CLI::App& data, GlobalOptions& global) {
  struct Args {
    std::vector<std::string> paths;
    bool formats = false, refuse_non_finite = false;
    std::string label_field = "label";
  };
  auto args = std::make_shared<Args>();
  auto* info = data.add_subcommand(
      "info", "Read point clouds through the shared format table (as train / segment / view do) and summarise\n"
              "them; --formats lists the supported formats");
  info->add_option("paths", args->paths,
                   "Point files, room folders, file.h5#k items, or folders of scenes (a prepared cache, a folder of "
                   "scans: every scene in it)");
  info->add_flag("--formats", args->formats, "List the supported point formats");
  info->add_option("--label-field", args->label_field, "PLY/PCD label field")->capture_default_str();
  info->add_flag("--refuse-non-finite", args->refuse_non_finite, "A NaN/Inf coordinate is an error");
  info->callback([&global, args] {
    apply_global_options(global);
    if (args->formats || args->paths.empty()) {
      for (const auto* f : datasets::cloud_formats()) std::cout << f->name << "\t" << f->description << "\n";
      if (args->paths.empty()) return;
    }
    datasets::CloudReadOptions o;
    o.label_field = args->label_field;
    o.refuse_non_finite = args->refuse_non_finite;
    std::vector<std::string> items;
    for (const auto& p : args->paths) {
      // A folder that is not one scene itself (a prepared S3DIS cache, a folder of scans):
      // every scene the format table lists in it; none listed -> open_cloud's error for it.
      std::vector<std::string> listed;
      if (fs::is_directory(p) && datasets::detect_cloud_format(p) == nullptr) listed = datasets::list_cloud_scenes(p);
      if (listed.empty()) {
        items.push_back(p);
      } else {
        std::cout << p << ": " << listed.size() << " scene" << (listed.size() == 1 ? "" : "s") << "\n";
        items.insert(items.end(), listed.begin(), listed.end());
      }
    }
    for (const auto& p : items) {
      const auto s = datasets::open_cloud(p, o);
      const auto& c = s.cloud;
      std::cout << p << ": " << s.format << ", " << c.size() << " points";
      if (c.has_color()) std::cout << ", colour";
      if (c.has_normal()) std::cout << ", normals";
      if (c.has_segment()) {
        std::cout << ", labels " << c.segment.min().item<int64_t>() << ".." << c.segment.max().item<int64_t>();
      }
      if (c.has_instance()) std::cout << ", instances";
      for (const auto& [k, t] : c.extra) std::cout << ", " << k;
      if (s.non_finite > 0) std::cout << "; " << s.non_finite << " non-finite points dropped";
      if (s.damaged_lines > 0) std::cout << "; " << s.damaged_lines << " damaged lines";
      std::cout << "\n";
      for (const auto& issue : s.issues) std::cout << "  " << issue.to_string() << "\n";
      const int64_t more = s.damaged_lines - static_cast<int64_t>(s.issues.size());
      if (more > 0) std::cout << "  ... " << more << " more\n";
    }
  });
}

}  // namespace

void add_data_command(CLI::App& app, GlobalOptions& global) {
  auto* data = app.add_subcommand("data", "Prepare datasets (S3DIS cache), write synthetic rooms, export sample images");
  data->require_subcommand(1);
  add_prepare(*data, global);
  add_synth_rooms(*data, global);
  add_info(*data, global);
  add_data_export_images_command(*data, global);
}

}  // namespace ewa::app
