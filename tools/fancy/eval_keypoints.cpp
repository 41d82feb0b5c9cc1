// `fancy eval-keypoints`: COCO keypoint AP/AR as pycocotools prints it, plus
// breakdowns, a JSON report and a precision-recall chart. Torch-free: it links only
// the keypoint library, so it starts in milliseconds.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_util.h"
#include "fancy/keypoints/eval.h"

namespace fs = std::filesystem;
namespace kp = fancy::keypoints;

namespace {

void print_breakdowns(const kp::EvalResult& r, bool per_category, bool per_keypoint) {
  if (per_category) {
    std::printf("\nper category            AP     AP50   AP75   APm    APl    AR\n");
    for (const auto& c : r.per_category)
      std::printf("  %-6lld %-14s %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f\n", static_cast<long long>(c.id),
                  c.name.c_str(), c.stats[0], c.stats[1], c.stats[2], c.stats[3], c.stats[4], c.stats[5]);
  }
  if (per_keypoint) {
    std::printf("\nper keypoint (matched pairs at OKS 0.50)  sigma   pairs  mean OKS term  mean error/scale\n");
    for (const auto& k : r.per_keypoint)
      std::printf("  %-38s %6.3f %7lld %14.4f %17.4f\n", k.name.c_str(), k.sigma, static_cast<long long>(k.pairs),
                  k.mean_oks_term, k.mean_normalized_error);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fancy eval-keypoints: COCO keypoint evaluation (OKS AP/AR) with pycocotools' exact numbers.\n"
      "Prints pycocotools' 10 summary lines; --json writes {\"stats\": [10 numbers], ...} with per-category,\n"
      "per-area and per-keypoint breakdowns and the precision-recall curves. Exit code 0 on success, 1 with\n"
      "a message naming the file, record and field on bad input."};
  std::string gt_path, dt_path, json_out, plot_out, rules = "pycocotools";
  std::vector<double> sigmas;
  std::vector<int64_t> categories, images, max_dets{20};
  bool area_from_box = false, crowdpose = false, wholebody = false, per_category = false, per_keypoint = false,
       timings = false, match_id_zero = false, keep_ignore = false;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--gt", gt_path, "ground truth: COCO JSON with images, annotations, categories")->required();
  app.add_option("--dt", dt_path, "results: JSON list of {image_id, category_id, keypoints, score[, bbox]}")
      ->required();
  app.add_option("--json", json_out, "write the report here (written to a temporary name, then renamed)");
  app.add_option("--plot", plot_out, "draw the precision-recall curves to this PNG (needs python3-matplotlib)");
  app.add_option("--sigmas", sigmas, "per-keypoint sigmas, comma-separated (default: COCO's 17, .26/10 ...)")
      ->delimiter(',');
  app.add_flag("--area-from-box", area_from_box,
               "OKS scale from the GT box, 0.53*w*h (xtcocotools use_area=False), not the 'area' field");
  app.add_flag("--crowdpose", crowdpose,
               "CrowdPose: its 14 sigmas, xtcocotools rules, box areas, and AP for easy/medium/hard images "
               "(crowdIndex < 0.2, < 0.8, else)");
  app.add_flag("--wholebody", wholebody,
               "COCO-WholeBody: evaluate body, foot, face, left hand, right hand and whole body, each with its "
               "sigmas and score key");
  app.add_option("--rules", rules, "where reference tools differ: pycocotools or xtcocotools")
      ->check(CLI::IsMember({"pycocotools", "xtcocotools"}))
      ->capture_default_str();
  app.add_option("--categories", categories, "evaluate only these category ids, comma-separated")->delimiter(',');
  app.add_option("--images", images, "evaluate only these image ids, comma-separated")->delimiter(',');
  app.add_option("--max-dets", max_dets, "detections kept per image (the summary uses the largest)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_flag("--match-gt-id-zero", match_id_zero,
               "let a ground truth whose id is 0 be matched (pycocotools never matches it)");
  app.add_flag("--keep-ignore-field", keep_ignore,
               "honour the annotations' 'ignore' field (pycocotools overwrites it with iscrowd)");
  app.add_flag("--per-category", per_category, "print AP/AR per category");
  app.add_flag("--per-keypoint", per_keypoint, "print the mean OKS term and mean normalized error per keypoint");
  app.add_flag("--timings", timings, "print the time of each phase (load, OKS, match, accumulate, summarize)");
  app.add_option("--threads", threads, "worker threads")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    kp::EvalOptions opt;
    opt.sigmas = sigmas;
    opt.rules = rules == "xtcocotools" ? kp::Rules::xtcocotools : kp::Rules::pycocotools;
    opt.area_from_box = area_from_box;
    opt.category_ids = categories;
    opt.image_ids = images;
    opt.max_dets = max_dets;
    opt.gt_id_zero_never_matched = !match_id_zero;
    opt.ignore_overwritten_by_iscrowd = !keep_ignore;
    opt.threads = threads;
    if (crowdpose) {
      if (sigmas.empty()) opt.sigmas = kp::crowdpose_sigmas();
      opt.rules = kp::Rules::xtcocotools;
      opt.area_from_box = true;
      opt.crowd_split = true;
    }

    nlohmann::json report;
    if (wholebody) {
      opt.rules = kp::Rules::xtcocotools;
      for (const auto& part : kp::wholebody_parts()) {
        const auto gt = kp::load_ground_truth(gt_path, part.layout);
        const auto dt = kp::load_detections(dt_path, part.layout);
        kp::EvalOptions po = opt;
        po.sigmas = part.sigmas;
        const auto r = kp::evaluate(gt, dt, po);
        std::printf("== %s (%zu keypoints)\n%s", part.name.c_str(), part.sigmas.size(), kp::summary_text(r).c_str());
        report["parts"][part.name] = nlohmann::json::parse(kp::result_json(r));
        if (part.name == "wholebody") report["stats"] = report["parts"][part.name]["stats"];
      }
    } else {
      const auto r = kp::evaluate_files(gt_path, dt_path, opt);
      std::fputs(kp::summary_text(r).c_str(), stdout);
      print_breakdowns(r, per_category, per_keypoint);
      if (timings)
        std::printf("\ntimings (s): load gt %.4f, load results %.4f, OKS %.4f, match %.4f, accumulate %.4f, "
                    "summarize %.4f; %d thread(s)\n",
                    r.timings.load_gt, r.timings.load_results, r.timings.oks, r.timings.match, r.timings.accumulate, r.timings.summarize,
                    threads);
      if (!json_out.empty() || !plot_out.empty()) report = nlohmann::json::parse(kp::result_json(r));
    }
    report["gt"] = gt_path;
    report["dt"] = dt_path;
    report["threads"] = threads;
    if (!json_out.empty()) fancy::cli::write_atomically(json_out, report.dump(1) + "\n");
    if (!plot_out.empty()) {
      std::string source = json_out;
      if (source.empty()) {
        source = plot_out + ".json.tmp";
        fancy::cli::write_atomically(source, report.dump() + "\n");
      }
      const auto script = fancy::cli::share_file("plot_pr.py");
      if (!fancy::cli::run_python(script, {source, plot_out}))
        std::fprintf(stderr, "eval-keypoints: chart not drawn (needs %s and python3-matplotlib)\n",
                     script.string().c_str());
      if (json_out.empty()) fs::remove(source);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eval-keypoints: %s\n", e.what());
    return 1;
  }
  return 0;
}
