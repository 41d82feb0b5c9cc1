// Loading COCO keypoint ground truth and results with simdjson's DOM parser.
// Every error names the source, the record (array index and id when known), the
// field, the value and the rule.
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <unordered_set>

#include "fancy/keypoints/coco.h"

namespace fancy::keypoints {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// Where we are, for messages: "gt.json: annotations[12] (id 4051)".
struct Where {
  const std::string& source;
  std::string record;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(source + ": " + record + ": field '" + field + "' " + what);
  }
};

// JSON has no NaN or Infinity; Python's json module writes them anyway. Point at the
// first one so the user knows why the parser refused the file.
std::string locate_non_json_number(std::string_view text) {
  bool in_string = false;
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    for (const char* word : {"NaN", "Infinity"}) {
      if (text.compare(i, std::strlen(word), word) == 0)
        return std::string(" (it contains ") + word + " at line " + std::to_string(line) +
               ", which JSON does not allow: coordinates and scores must be finite numbers)";
    }
  }
  return "";
}

element parse_document(simdjson::dom::parser& parser, const simdjson::padded_string& text,
                       const std::string& source) {
  element doc;
  const auto err = parser.parse(text).get(doc);
  if (err) {
    throw Error(source + ": malformed JSON: " + simdjson::error_message(err) +
                locate_non_json_number(std::string_view(text.data(), text.size())));
  }
  return doc;
}

simdjson::padded_string read_file(const std::string& path) {
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text))
    throw Error(path + ": cannot read the file (missing or unreadable)");
  return text;
}

bool find(const object& obj, std::string_view key, element& out) {
  return !obj[key].get(out);
}

element require(const object& obj, const Where& where, std::string_view key) {
  element e;
  if (!find(obj, key, e)) where.fail(std::string(key), "is missing");
  return e;
}

double to_number(element e, const Where& where, const std::string& field) {
  double v;
  if (e.get_double().get(v)) where.fail(field, std::string("must be a number, got ") + type_name(e.type()));
  if (!std::isfinite(v)) where.fail(field, "must be finite, got " + std::to_string(v));
  return v;
}

int64_t to_integer(element e, const Where& where, const std::string& field) {
  int64_t v;
  if (!e.get_int64().get(v)) return v;
  double d;
  if (!e.get_double().get(d) && std::floor(d) == d && std::fabs(d) < 9.0e18) return static_cast<int64_t>(d);
  where.fail(field, std::string("must be an integer, got ") + type_name(e.type()));
}

bool to_flag(element e, const Where& where, const std::string& field) {
  bool b;
  if (!e.get_bool().get(b)) return b;
  return to_number(e, where, field) != 0;
}

array to_array(element e, const Where& where, const std::string& field) {
  array a;
  if (e.get_array().get(a)) where.fail(field, std::string("must be an array, got ") + type_name(e.type()));
  return a;
}

object to_object(element e, const std::string& source, const std::string& record) {
  object o;
  if (e.get_object().get(o))
    throw Error(source + ": " + record + " must be an object, got " + type_name(e.type()));
  return o;
}

array top_array(const object& root, const std::string& source, std::string_view key) {
  element e;
  if (!find(root, key, e)) throw Error(source + ": the ground truth has no '" + std::string(key) + "' array");
  array a;
  if (e.get_array().get(a))
    throw Error(source + ": '" + std::string(key) + "' must be an array, got " + type_name(e.type()));
  return a;
}

// Appends the x, y, v triples of every layout key; returns the number of values added.
void append_keypoints(const object& obj, const Where& where, const Layout& layout, std::vector<double>& out) {
  for (const auto& key : layout.keys) {
    const array a = to_array(require(obj, where, key), where, key);
    const size_t before = out.size();
    size_t i = 0;
    for (element v : a) {
      double d;
      if (v.get_double().get(d))
        where.fail(key, "[" + std::to_string(i) + "] must be a number, got " + type_name(v.type()));
      if (!std::isfinite(d)) where.fail(key, "[" + std::to_string(i) + "] must be finite");
      out.push_back(d);
      ++i;
    }
    if ((out.size() - before) % 3 != 0)
      where.fail(key, "has " + std::to_string(out.size() - before) +
                          " values; keypoints are x, y, v triples, so the count must be a multiple of 3");
  }
}

std::array<double, 4> read_box(element e, const Where& where, const std::string& field) {
  const array a = to_array(e, where, field);
  std::array<double, 4> box{};
  size_t n = 0;
  for (element v : a) {
    if (n < 4) box[n] = to_number(v, where, field + "[" + std::to_string(n) + "]");
    ++n;
  }
  if (n != 4) where.fail(field, "has " + std::to_string(n) + " values; a box is [x, y, width, height]");
  return box;
}

std::string record_name(const char* array_name, size_t index, const object& obj) {
  std::string r = std::string(array_name) + "[" + std::to_string(index) + "]";
  element id;
  int64_t v;
  if (find(obj, "id", id) && !id.get_int64().get(v)) r += " (id " + std::to_string(v) + ")";
  return r;
}

GroundTruth parse_ground_truth_document(element doc, const std::string& source, const Layout& layout) {
  object root;
  if (doc.get_object().get(root))
    throw Error(source + ": the ground truth must be a JSON object with images, annotations and categories");
  GroundTruth gt;
  gt.source = source;
  gt.keypoint_keys = layout.keys;

  std::unordered_set<int64_t> image_ids, category_ids, annotation_ids;
  size_t index = 0;
  for (element e : top_array(root, source, "images")) {
    const std::string rec = "images[" + std::to_string(index++) + "]";
    const object o = to_object(e, source, rec);
    const Where where{source, rec};
    Image img;
    img.id = to_integer(require(o, where, "id"), where, "id");
    element ci;
    if (find(o, "crowdIndex", ci)) img.crowd_index = to_number(ci, where, "crowdIndex");
    if (!image_ids.insert(img.id).second) where.fail("id", std::to_string(img.id) + " is used by another image");
    gt.images.push_back(img);
  }

  index = 0;
  for (element e : top_array(root, source, "categories")) {
    const std::string rec = "categories[" + std::to_string(index++) + "]";
    const object o = to_object(e, source, rec);
    const Where where{source, rec};
    Category cat;
    cat.id = to_integer(require(o, where, "id"), where, "id");
    element v;
    std::string_view s;
    if (find(o, "name", v) && !v.get_string().get(s)) cat.name = std::string(s);
    if (find(o, "keypoints", v)) {
      for (element name : to_array(v, where, "keypoints")) {
        if (name.get_string().get(s)) where.fail("keypoints", "must hold keypoint names (strings)");
        cat.keypoint_names.emplace_back(s);
      }
    }
    if (find(o, "skeleton", v)) {
      for (element pair : to_array(v, where, "skeleton")) {
        std::array<int64_t, 2> edge{};
        size_t n = 0;
        for (element j : to_array(pair, where, "skeleton")) {
          if (n < 2) edge[n] = to_integer(j, where, "skeleton");
          ++n;
        }
        if (n != 2) where.fail("skeleton", "must hold pairs of keypoint numbers");
        cat.skeleton.push_back(edge);
      }
    }
    if (!category_ids.insert(cat.id).second) where.fail("id", std::to_string(cat.id) + " is used by another category");
    gt.categories.push_back(std::move(cat));
  }

  index = 0;
  array anns = top_array(root, source, "annotations");
  gt.annotations.reserve(anns.size());
  for (element e : anns) {
    const size_t i = index++;
    const object o = to_object(e, source, "annotations[" + std::to_string(i) + "]");
    const Where where{source, record_name("annotations", i, o)};
    Annotation a;
    a.id = to_integer(require(o, where, "id"), where, "id");
    a.image_id = to_integer(require(o, where, "image_id"), where, "image_id");
    a.category_id = to_integer(require(o, where, "category_id"), where, "category_id");
    if (!image_ids.count(a.image_id)) where.fail("image_id", std::to_string(a.image_id) + " is not in 'images'");
    if (!category_ids.count(a.category_id))
      where.fail("category_id", std::to_string(a.category_id) + " is not in 'categories'");
    if (!annotation_ids.insert(a.id).second)
      where.fail("id", std::to_string(a.id) + " is used by another annotation (ids must be unique)");
    append_keypoints(o, where, layout, a.keypoints);
    a.bbox = read_box(require(o, where, "bbox"), where, "bbox");
    element v;
    if (find(o, "area", v)) {
      a.area = to_number(v, where, "area");
      a.has_area = true;
    }
    if (find(o, "iscrowd", v)) a.iscrowd = to_flag(v, where, "iscrowd");
    if (find(o, "num_keypoints", v)) a.num_keypoints = to_integer(v, where, "num_keypoints");
    if (find(o, "ignore", v)) a.ignore = to_flag(v, where, "ignore") ? 1 : 0;
    gt.annotations.push_back(std::move(a));
  }
  return gt;
}

Detections parse_detections_document(element doc, const std::string& source, const Layout& layout) {
  array records;
  if (doc.get_array().get(records))
    throw Error(source + ": results must be a JSON array of {image_id, category_id, keypoints, score}, got " +
                type_name(doc.type()));
  Detections dt;
  dt.source = source;
  const size_t n = records.size();
  dt.image_id.reserve(n);
  dt.category_id.reserve(n);
  dt.score.reserve(n);
  size_t index = 0;
  for (element e : records) {
    const size_t i = index++;
    const std::string rec = "results[" + std::to_string(i) + "]";
    const object o = to_object(e, source, rec);
    const Where where{source, rec};
    dt.image_id.push_back(to_integer(require(o, where, "image_id"), where, "image_id"));
    dt.category_id.push_back(to_integer(require(o, where, "category_id"), where, "category_id"));
    element s;
    if (find(o, layout.score_key, s)) dt.score.push_back(to_number(s, where, layout.score_key));
    else dt.score.push_back(to_number(require(o, where, "score"), where, "score"));
    const size_t before = dt.keypoints.size();
    if (i == 0) dt.keypoints.reserve(n * 3 * 17);
    append_keypoints(o, where, layout, dt.keypoints);
    const int64_t k = static_cast<int64_t>(dt.keypoints.size() - before) / 3;
    if (i == 0) dt.keypoint_count = k;
    else if (k != dt.keypoint_count)
      where.fail(layout.keys.front(), "holds " + std::to_string(k) + " keypoints but results[0] holds " +
                                          std::to_string(dt.keypoint_count) + "; every result needs the same count");
    // pycocotools decides from the first result whether areas come from boxes.
    element box;
    const bool has_box = find(o, "bbox", box) && !(box.is_array() && box.get_array().value().size() == 0);
    if (i == 0) dt.has_bbox = has_box;
    if (dt.has_bbox) {
      if (!has_box) where.fail("bbox", "is missing, but results[0] has one (areas then come from every result's box)");
      const auto b = read_box(box, where, "bbox");
      dt.bbox.insert(dt.bbox.end(), b.begin(), b.end());
    }
  }
  return dt;
}

}  // namespace

GroundTruth parse_ground_truth(std::string_view json, const std::string& source, const Layout& layout) {
  simdjson::dom::parser parser;
  const simdjson::padded_string text(json);
  return parse_ground_truth_document(parse_document(parser, text, source), source, layout);
}

GroundTruth load_ground_truth(const std::string& path, const Layout& layout) {
  simdjson::dom::parser parser;
  const auto text = read_file(path);
  return parse_ground_truth_document(parse_document(parser, text, path), path, layout);
}

Detections parse_detections(std::string_view json, const std::string& source, const Layout& layout) {
  simdjson::dom::parser parser;
  const simdjson::padded_string text(json);
  return parse_detections_document(parse_document(parser, text, source), source, layout);
}

Detections load_detections(const std::string& path, const Layout& layout) {
  simdjson::dom::parser parser;
  const auto text = read_file(path);
  return parse_detections_document(parse_document(parser, text, path), path, layout);
}

}  // namespace fancy::keypoints
