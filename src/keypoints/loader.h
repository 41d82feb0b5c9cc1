// Loader internals shared with the evaluator (not part of the public API).
#pragma once

#include <functional>
#include <string>

#include "fancy/keypoints/coco.h"

namespace fancy::keypoints {

// Loads a results file in two halves, the second parsed through `other`: it is called
// once with the task (to run it, on another thread) and once with nullptr (to wait for
// it). `share` is the first half's share of the file.
Detections load_detections_split(const std::string& path, const Layout& layout, double share,
                                 const std::function<void(std::function<void()>)>& other);

}  // namespace fancy::keypoints
