// End-to-end 3D smoke through the CLI: `ewa data synth-rooms` -> `ewa data prepare s3dis`
// (resumable) -> `ewa train configs/test/semseg-pt-tiny.yaml` -> `ewa eval` -> `ewa segment`
// (room folder, .npy) -> `ewa view --screenshot`; `ewa convert` of 3D runs; and bad inputs with
// clean messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "test_util.h"

namespace ewa::test {
namespace {

namespace fs = std::filesystem;

std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(Cli3d, SynthPrepareTrainSegmentView) {
  TempDir tmp;
  const std::string raw = tmp.str("raw"), cache = tmp.str("cache"), run = tmp.str("run");
  auto r = run_ewa("data synth-rooms " + q(raw) + " --rooms 3 --density 30 --seed 3");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("SYNTHETIC"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::is_directory(raw + "/Area_1/room_1/Annotations"));
  ASSERT_TRUE(fs::is_directory(raw + "/Area_2/room_1/Annotations"));

  r = run_ewa("data prepare s3dis " + q(raw) + " " + q(cache) + " --jobs 2 -q");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 written"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(cache + "/Area_1/room_1.h5"));
  r = run_ewa("data prepare s3dis " + q(raw) + " " + q(cache) + " -q");  // resumable: nothing to do
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 written, 3 already prepared"), std::string::npos) << r.out;

  const std::string cfg = std::string(EWA_SOURCE_DIR) + "/configs/test/semseg-pt-tiny.yaml";
  r = run_ewa("train " + q(cfg) + " --set data.root=" + q(cache) + " --run-dir " + q(run) + " -q");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(run + "/model.safetensors"));
  ASSERT_TRUE(fs::exists(run + "/eval_val.json"));
  const std::string ev = read_file(run + "/eval_val.json");
  EXPECT_NE(ev.find("\"miou\""), std::string::npos) << ev;
  EXPECT_NE(ev.find("\"confusion\""), std::string::npos) << ev;
  EXPECT_NE(ev.find("\"collapsed_moe_layers\""), std::string::npos) << ev;
  EXPECT_NE(r.out.find("mIoU"), std::string::npos) << r.out;

  r = run_ewa("eval " + q(run) + " --checkpoint last -q --out " + q(tmp.str("eval_last.json")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(fs::exists(tmp.str("eval_last.json")));

  // segment a raw room folder (ground truth known -> metrics table)
  const std::string ply = tmp.str("out/pred.ply");
  r = run_ewa("segment " + q(run + "/model.safetensors") + " " + q(raw + "/Area_2/room_1") + " --out " + q(ply) +
              " --probabilities " + q(tmp.str("out/prob.npy")) + " --fragments 2 --chunk-points 500");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("mIoU"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("[12] fragments, [0-9]+ forwards"))) << r.out;
  ASSERT_TRUE(fs::exists(ply));
  ASSERT_TRUE(fs::exists(tmp.str("out/room_1_pred.npy")));
  ASSERT_TRUE(fs::exists(tmp.str("out/pred.classes.txt")));
  const std::string head = read_file(ply).substr(0, 400);
  EXPECT_NE(head.find("property int pred"), std::string::npos) << head;
  EXPECT_NE(head.find("property int gt"), std::string::npos) << head;
  EXPECT_NE(head.find("property float confidence"), std::string::npos) << head;
  const std::string prob = read_file(tmp.str("out/prob.npy")).substr(0, 128);
  EXPECT_NE(prob.find("'descr': '<f2'"), std::string::npos) << prob;
  const std::string summary = read_file(tmp.str("out/pred.summary.json"));
  for (const char* key : {"\"forwards\"", "\"fragments\"", "\"points_inherited\"", "\"peak_rss_bytes\"", "\"miou\"",
                          "\"confusion\"", "\"chunk_points\": 500"}) {
    EXPECT_NE(summary.find(key), std::string::npos) << key << "\n" << summary;
  }

  // a .npy cloud without labels, explicit --npy; voxel mode
  r = run_ewa("segment " + q(run + "/model.safetensors") + " " + q(cache + "/Area_2/room_1.h5") + " --out " +
              q(tmp.str("h5.ply")) + " --npy " + q(tmp.str("h5_labels.npy")) + " --mode voxel");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(fs::exists(tmp.str("h5_labels.npy")));

  // the real unlabelled Kinect frame (organised PCD with NaN points) when ../shared/data is present
  const std::string shared = shared_data_dir();
  if (!shared.empty() && fs::exists(shared + "/kinect-office1.pcd")) {
    r = run_ewa("segment " + q(run + "/model.safetensors") + " " + q(shared + "/kinect-office1.pcd") + " --out " +
                q(tmp.str("kinect.ply")) + " --mode voxel -q");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(fs::exists(tmp.str("kinect.ply")));
    EXPECT_TRUE(fs::exists(tmp.str("kinect-office1_pred.npy")));
  }

  if (std::system("command -v xvfb-run >/dev/null 2>&1") == 0) {
    r = run_command("xvfb-run -a -s '-screen 0 640x480x24' '" + std::string(EWA_CLI_PATH) + "' view " + q(ply) +
                    " --classes " + q(tmp.str("out/pred.classes.txt")) + " --width 320 --height 240 --screenshot " +
                    q(tmp.str("shot.png")));
    if (r.err.find("without the viewer GUI") == std::string::npos) {
      ASSERT_EQ(r.status, 0) << r.out << r.err;
      EXPECT_NE(r.out.find("prediction"), std::string::npos) << r.out;
      EXPECT_TRUE(fs::exists(tmp.str("shot.png")));
    }
  }
}

// `ewa convert` of segmentation runs as a user runs it: the best checkpoint of a RUP/EWA run
// becomes a dense model that `ewa segment` takes; a learned router's run is refused without
// --average, and with it the mIoU cost is printed; a lone model file needs --config.
TEST(Cli3d, ConvertPointRuns) {
  TempDir tmp;
  const std::string raw = tmp.str("raw"), cache = tmp.str("cache"), run = tmp.str("run"), tc = tmp.str("tc");
  ASSERT_EQ(run_ewa("data synth-rooms " + q(raw) + " --rooms 2 --density 30 --seed 5").status, 0);
  ASSERT_EQ(run_ewa("data prepare s3dis " + q(raw) + " " + q(cache) + " -q").status, 0);
  const std::string cfg = std::string(EWA_SOURCE_DIR) + "/configs/test/semseg-pt-tiny.yaml";
  auto r = run_ewa("train " + q(cfg) + " --set data.root=" + q(cache) + " --set train.epochs=1 --run-dir " + q(run) +
                   " -q");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  r = run_ewa("convert " + q(run) + " --checkpoint best --out " + q(tmp.str("best.safetensors")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("collapsed 4 MoE linears (2 experts each) into dense linears (router rup)"), std::string::npos)
      << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("max \\|MoE eval output - dense output\\| = (\\S+) on 2 probe")))
      << r.out;
  EXPECT_LE(std::stod(m[1]), 1e-4);
  r = run_ewa("inspect " + q(tmp.str("best.safetensors")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("MoE linears: none (dense)"), std::string::npos) << r.out;
  r = run_ewa("segment " + q(tmp.str("best.safetensors")) + " " + q(raw + "/Area_2/room_1") + " --out " +
              q(tmp.str("best.ply")) + " --mode voxel");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("mIoU"), std::string::npos) << r.out;
  r = run_ewa("eval " + q(run) + " --checkpoint model -q --out " + q(tmp.str("eval_model.json")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;

  r = run_ewa("train " + q(cfg) + " --set data.root=" + q(cache) +
              " --set train.epochs=1 --set model.ewa.enabled=false --set model.pt.moe.router.name=soft_moe --run-dir " +
              q(tc) + " -q");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  r = run_ewa("convert " + q(tc) + " --out " + q(tmp.str("x.safetensors")));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("learned router 'soft_moe'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--average"), std::string::npos) << r.err;
  r = run_ewa("convert " + q(tc + "/model.safetensors") + " --average --out " + q(tmp.str("avg.safetensors")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("accuracy cost on val \\(1 scenes\\): mIoU [0-9.]+% routed MoE -> "
                                                  "[0-9.]+% averaged experts")))
      << r.out;
  fs::copy_file(tc + "/model.safetensors", tmp.str("lone.safetensors"));
  r = run_ewa("convert " + q(tmp.str("lone.safetensors")) + " --average --out " + q(tmp.str("y.safetensors")));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.str("y.safetensors")));
  r = run_ewa("convert " + q(tmp.str("lone.safetensors")) + " --average --config " + q(tc + "/config.yaml") +
              " --out " + q(tmp.str("y.safetensors")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("averaged 4 MoE linears"), std::string::npos) << r.out;
  // a 3D run's config for a ViT file, and a ViT run's config for a point file, are named errors
  r = run_ewa("convert " + q(tmp.str("lone.safetensors")) + " --average --config " +
              q(std::string(EWA_SOURCE_DIR) + "/configs/test/cls-vit-tiny.yaml") + " --out " + q(tmp.str("z.safetensors")));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("image_classification"), std::string::npos) << r.err;
}

TEST(Cli3d, BadInputsGiveCleanErrors) {
  TempDir tmp;
  // a room without Annotations is not a room: prepare finds nothing and says where it looked
  fs::create_directories(tmp.path() / "raw/Area_1/office_1");
  auto r = run_ewa("data prepare s3dis " + q(tmp.str("raw")) + " " + q(tmp.str("cache")) + " -q");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(tmp.str("raw")), std::string::npos) << r.err;

  // an annotation file with NaN coordinates: refused on request, the room fails, nothing is
  // written for it (by default the line is dropped and counted: test_cli_point_formats.cpp)
  write_file(tmp.path() / "raw2/Area_1/office_1/Annotations/wall_1.txt", "0 0 0 1 2 3\nnan 1 1 1 2 3\n");
  r = run_ewa("data prepare s3dis " + q(tmp.str("raw2")) + " " + q(tmp.str("cache2")) + " -q --refuse-non-finite");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("office_1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.str("cache2/Area_1/office_1.h5")));

  // segment: not a model / missing input
  write_file(tmp.path() / "x.safetensors", "garbage");
  r = run_ewa("segment " + q(tmp.str("x.safetensors")) + " " + q(tmp.str("nothing.ply")) + " --out " +
              q(tmp.str("p.ply")));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("x.safetensors"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.str("p.ply")));

  // config errors name the key
  write_file(tmp.path() / "bad.yaml", "task: semantic_segmentation\ndata:\n  root: x\n  features: [xyz, rgb, depth]\n");
  r = run_ewa("config check " + q(tmp.str("bad.yaml")));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("data.features"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ewa::test
