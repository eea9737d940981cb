// Typed config of the image-classification task (`task: image_classification`).
#pragma once

#include <torch/arg.h>

#include <string>
#include <vector>

#include "ewa/core/options.h"
#include "ewa/core/train_options.h"

namespace ewa::vision2d {

struct AugmentOptions {
  TORCH_ARG(int64_t, crop_padding) = 0;        ///< random crop with this zero padding (0 = off)
  TORCH_ARG(bool, random_resized_crop) = false;
  TORCH_ARG(double, rrc_min_scale) = 0.08;
  TORCH_ARG(bool, hflip) = false;
  TORCH_ARG(int64_t, randaugment_n) = 0;       ///< RandAugment ops per image (0 = off)
  TORCH_ARG(int64_t, randaugment_m) = 9;       ///< RandAugment magnitude 0..30
  TORCH_ARG(double, color_jitter) = 0.0;
  TORCH_ARG(double, random_erasing) = 0.0;     ///< probability
  TORCH_ARG(double, mixup_alpha) = 0.0;        ///< 0 = off
  TORCH_ARG(double, cutmix_alpha) = 0.0;       ///< 0 = off

 public:
  template <class A>
  void visit(A& a) {
    a("crop_padding", crop_padding())("random_resized_crop", random_resized_crop());
    a("rrc_min_scale", rrc_min_scale())("hflip", hflip())("randaugment_n", randaugment_n());
    a("randaugment_m", randaugment_m())("color_jitter", color_jitter())("random_erasing", random_erasing());
    a("mixup_alpha", mixup_alpha())("cutmix_alpha", cutmix_alpha());
    a.require(crop_padding() >= 0, "crop_padding", "an integer >= 0");
    a.require(rrc_min_scale() > 0 && rrc_min_scale() <= 1, "rrc_min_scale", "a number in (0, 1]");
    a.require(randaugment_n() >= 0, "randaugment_n", "an integer >= 0");
    a.require(randaugment_m() >= 0 && randaugment_m() <= 30, "randaugment_m", "an integer in [0, 30]");
    a.require(random_erasing() >= 0 && random_erasing() <= 1, "random_erasing", "a probability in [0, 1]");
    a.require(mixup_alpha() >= 0, "mixup_alpha", "a number >= 0");
    a.require(cutmix_alpha() >= 0, "cutmix_alpha", "a number >= 0");
  }
};

struct ImageDataOptions {
  /// fashion_mnist | mnist | cifar10 | cifar100 | tiny_imagenet | image_folder
  TORCH_ARG(std::string, dataset) = "fashion_mnist";
  TORCH_ARG(std::string, root) = "";           ///< "" = dataset default location
  TORCH_ARG(std::string, val_root) = "";       ///< image_folder: separate validation folder
  TORCH_ARG(double, val_fraction) = 0.0;       ///< carve a seeded val split from train (0 = use test set)
  TORCH_ARG(int64_t, train_limit) = 0;         ///< use a seeded subset of this many train images (0 = all)
  TORCH_ARG(int64_t, eval_limit) = 0;          ///< evaluate on at most this many images (0 = all)
  TORCH_ARG(std::string, cifar100_labels) = "fine";  ///< fine | coarse
  TORCH_ARG(int64_t, image_size) = 0;          ///< resize to this (0 = native size)
  TORCH_ARG(int64_t, workers) = 0;             ///< decode/augment threads (0 = run threads)
  TORCH_ARG(int64_t, prefetch) = 4;            ///< batches prepared ahead
  TORCH_ARG(bool, cache) = true;               ///< keep decoded images in memory
  TORCH_ARG(std::string, on_bad_image) = "fail";  ///< fail | skip
  TORCH_ARG(std::vector<double>, mean) = {};   ///< per-channel; [] = dataset default
  TORCH_ARG(std::vector<double>, std) = {};
  TORCH_ARG(AugmentOptions, augment) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("dataset", dataset(),
             {"fashion_mnist", "mnist", "cifar10", "cifar100", "tiny_imagenet", "image_folder"});
    a("root", root())("val_root", val_root())("val_fraction", val_fraction());
    a("train_limit", train_limit())("eval_limit", eval_limit());
    a.one_of("cifar100_labels", cifar100_labels(), {"fine", "coarse"});
    a("image_size", image_size())("workers", workers())("prefetch", prefetch())("cache", cache());
    a.one_of("on_bad_image", on_bad_image(), {"fail", "skip"});
    a("mean", mean())("std", std())("augment", augment());
    a.require(val_fraction() >= 0 && val_fraction() < 1, "val_fraction", "a number in [0, 1)");
    a.require(train_limit() >= 0, "train_limit", "an integer >= 0");
    a.require(eval_limit() >= 0, "eval_limit", "an integer >= 0");
    a.require(image_size() >= 0, "image_size", "an integer >= 0");
    a.require(workers() >= 0, "workers", "an integer >= 0");
    a.require(prefetch() >= 1, "prefetch", "an integer >= 1");
    a.require(mean().size() == std().size(), "std", "as many values as mean");
  }
};

struct ImageModelOptions {
  TORCH_ARG(std::string, name) = "vit";
  /// "" or a preset: vit_tiny, vit_small, vit_base (timm sizes), vit_28px, vit_32px, vit_64px.
  TORCH_ARG(std::string, preset) = "";
  TORCH_ARG(VisionTransformerOptions, vit) = {};
  TORCH_ARG(MoEOptions, moe) = {};
  TORCH_ARG(EwaOptions, ewa) = {};
  /// "" or a dense ViT .safetensors (timm names, e.g. a pretrained timm ViT or a vanilla run's
  /// model.safetensors): its weights start the run and its FFNs are upcycled into the MoE
  /// experts (copies) for EWA fine-tuning. A head of another class count starts fresh.
  TORCH_ARG(std::string, init_from) = "";

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("name", name(), {"vit"});
    a.one_of("preset", preset(), {"", "vit_tiny", "vit_small", "vit_base", "vit_28px", "vit_32px", "vit_64px"});
    a("vit", vit())("moe", moe())("ewa", ewa())("init_from", init_from());
    a.require(!ewa().enabled() || moe().enabled(), "ewa", "moe.enabled: true when ewa.enabled is true");
  }
};

/// The whole config file of an image-classification run.
struct ImageClassificationConfig {
  TORCH_ARG(std::string, task) = "image_classification";
  TORCH_ARG(RunOptions, run) = {};
  TORCH_ARG(ImageDataOptions, data) = {};
  TORCH_ARG(ImageModelOptions, model) = {};
  TORCH_ARG(TrainOptions, train) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("task", task(), {"image_classification"});
    a("run", run())("data", data())("model", model())("train", train());
  }
};

}  // namespace ewa::vision2d
