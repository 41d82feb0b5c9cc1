// Loading COCO keypoint ground truth and results with simdjson's On-Demand parser
// (one forward pass, numbers parsed straight into the columns). Every error names
// the source, the record (array index and id when known), the field, the value and
// the rule; malformed JSON is reported with its line.
#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <cstring>
#include <unordered_set>

#include "fancy/keypoints/coco.h"
#include "keypoints/loader.h"

namespace fancy::keypoints {
namespace {

namespace od = simdjson::ondemand;

const char* type_name(od::value& v) {
  od::json_type t;
  if (v.type().get(t)) return "malformed JSON";
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "a value";
}

// The text being parsed, for line numbers in messages.
struct Source {
  const std::string& name;
  std::string_view text;
  od::document* doc = nullptr;

  size_t line_of(const char* p) const {
    if (p < text.data() || p > text.data() + text.size()) return 0;
    size_t line = 1;
    for (const char* c = text.data(); c < p; ++c) line += *c == '\n';
    return line;
  }

  // JSON has no NaN or Infinity; Python's json module writes them anyway.
  std::string non_json_number() const {
    const std::string_view t(text.data(), text.size());
    bool in_string = false;
    size_t line = 1;
    for (size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (c == '\n') ++line;
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      for (const char* word : {"NaN", "Infinity"})
        if (t.compare(i, std::strlen(word), word) == 0)
          return std::string("; it contains ") + word + " at line " + std::to_string(line) +
                 ", which JSON does not allow (coordinates and scores must be finite numbers)";
    }
    return "";
  }

  [[noreturn]] void malformed(simdjson::error_code err) const {
    std::string where;
    const char* p = nullptr;
    if (doc && !doc->current_location().get(p)) where = " near line " + std::to_string(line_of(p));
    throw Error(name + ": malformed JSON" + where + " (" + simdjson::error_message(err) + ")" + non_json_number());
  }
};

// One record being read: "gt.json: annotations[12] (id 4051)".
struct Record {
  const Source& src;
  const char* kind;  // "results", "annotations", ...; the label is built only for messages
  size_t index = 0;
  int64_t id = 0;
  bool has_id = false;

  std::string label() const { return std::string(kind) + "[" + std::to_string(index) + "]"; }
  std::string name() const { return label() + (has_id ? " (id " + std::to_string(id) + ")" : ""); }
  [[noreturn]] void fail(std::string_view field, const std::string& what) const {
    throw Error(src.name + ": " + name() + ": field '" + std::string(field) + "' " + what);
  }
  // A structural error is malformed JSON; anything else is a wrong value.
  void check(simdjson::error_code err, std::string_view field, od::value& v, const char* expected) const {
    if (!err) return;
    od::json_type t;
    if (v.type().get(t)) src.malformed(err);  // not a JSON value at all (NaN, a typo, ...)
    if (err == simdjson::INCORRECT_TYPE || err == simdjson::NUMBER_OUT_OF_RANGE || err == simdjson::NUMBER_ERROR)
      fail(field, std::string("must be ") + expected + ", got " + type_name(v));
    src.malformed(err);
  }

  double number(od::value v, std::string_view field) const {
    double d;
    check(v.get_double().get(d), field, v, "a number");
    if (!std::isfinite(d)) fail(field, "must be finite");
    return d;
  }
  int64_t integer(od::value v, std::string_view field) const {
    int64_t i;
    const auto err = v.get_int64().get(i);
    if (!err) return i;
    double d;
    if (!v.get_double().get(d) && std::floor(d) == d && std::fabs(d) < 9.0e18) return static_cast<int64_t>(d);
    check(err, field, v, "an integer");
    fail(field, "must be an integer");
  }
  bool flag(od::value v, std::string_view field) const {
    bool b;
    if (!v.get_bool().get(b)) return b;
    return number(v, field) != 0;
  }
  od::array array(od::value v, std::string_view field) const {
    od::array a;
    check(v.get_array().get(a), field, v, "an array");
    return a;
  }
  // Appends the numbers of a JSON array; returns how many.
  size_t numbers(od::value v, std::string_view field, std::vector<double>& out) const {
    size_t n = 0;
    for (auto item : array(v, field)) {
      double d;
      if (auto err = item.get_double().get(d)) {
        od::value e;
        if (item.get(e)) src.malformed(item.error());
        check(err, std::string(field) + "[" + std::to_string(n) + "]", e, "a number");
      }
      if (!std::isfinite(d)) fail(field, "[" + std::to_string(n) + "] must be finite");
      out.push_back(d);
      ++n;
    }
    return n;
  }
  std::array<double, 4> box(od::value v, std::string_view field) const {
    std::vector<double> b;
    numbers(v, field, b);
    if (b.size() != 4) fail(field, "has " + std::to_string(b.size()) + " values; a box is [x, y, width, height]");
    return {b[0], b[1], b[2], b[3]};
  }
};

// Anything after the top-level value is an error (the document iterator reports its
// position only while it is not at the end).
void check_trailing(const Source& src, od::document& doc) {
  const char* p = nullptr;
  if (!doc.current_location().get(p))
    throw Error(src.name + ": malformed JSON: unexpected content after the top-level value at line " +
                std::to_string(src.line_of(p)));
}

int key_index(const Layout& layout, std::string_view key) {
  for (size_t i = 0; i < layout.keys.size(); ++i)
    if (layout.keys[i] == key) return static_cast<int>(i);
  return -1;
}

// Reads the layout's keypoint fields of one record (in any field order) and appends
// them, concatenated in layout order. `parts` holds one buffer per key.
struct KeypointFields {
  const Layout& layout;
  std::vector<std::vector<double>> parts;
  std::vector<char> seen;
  explicit KeypointFields(const Layout& l) : layout(l), parts(l.keys.size()), seen(l.keys.size()) {}
  void reset() {
    for (auto& p : parts) p.clear();
    std::fill(seen.begin(), seen.end(), 0);
  }
  // With one key (COCO), the numbers go straight to `direct` (the output column).
  bool read(const Record& r, std::string_view key, od::value v, std::vector<double>* direct = nullptr) {
    const int i = key_index(layout, key);
    if (i < 0) return false;
    if (direct && parts.size() == 1 && !seen[0]) {
      const size_t before = direct->size();
      r.numbers(v, key, *direct);
      direct_count = direct->size() - before;
      seen[0] = 2;
      return true;
    }
    parts[i].clear();
    r.numbers(v, key, parts[i]);
    seen[i] = 1;
    return true;
  }
  size_t direct_count = 0;
  void append_to(const Record& r, std::vector<double>& out) const {
    if (parts.size() == 1 && seen[0] == 2) {
      if (direct_count % 3)
        r.fail(layout.keys[0], "has " + std::to_string(direct_count) +
                                   " values; keypoints are x, y, v triples, so the count must be a multiple of 3");
      return;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!seen[i]) r.fail(layout.keys[i], "is missing");
      if (parts[i].size() % 3)
        r.fail(layout.keys[i], "has " + std::to_string(parts[i].size()) +
                                   " values; keypoints are x, y, v triples, so the count must be a multiple of 3");
      out.insert(out.end(), parts[i].begin(), parts[i].end());
    }
  }
};

template <class Body>
void for_each_field(const Record& r, od::value v, Body body) {
  od::object obj;
  if (auto err = v.get_object().get(obj)) {
    if (err == simdjson::INCORRECT_TYPE)
      throw Error(r.src.name + ": " + r.label() + " must be an object, got " + type_name(v));
    r.src.malformed(err);
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) r.src.malformed(field.error());
    body(key, field.value());
  }
}

// Parses results from text[0, len) (readable, with simdjson's padding, up to
// `capacity`); record numbers in messages start at `first_index`.
Detections parse_detections_text(const char* text, size_t len, size_t capacity, const std::string& name,
                                 const Layout& layout, size_t first_index = 0) {
  od::parser parser;
  od::document doc;
  Source src{name, std::string_view(text, len)};
  if (auto err = parser.iterate(simdjson::padded_string_view(text, len, capacity)).get(doc)) src.malformed(err);
  src.doc = &doc;
  od::array records;
  if (auto err = doc.get_array().get(records)) {
    if (err == simdjson::INCORRECT_TYPE)
      throw Error(name + ": results must be a JSON array of {image_id, category_id, keypoints, score}");
    src.malformed(err);
  }
  Detections dt;
  dt.source = name;
  dt.keypoints.reserve(len / 8);  // about one number per 8 bytes; pages are touched only when used
  KeypointFields kps(layout);
  size_t i = 0;
  for (auto item : records) {
    od::value v;
    if (item.get(v)) src.malformed(item.error());
    Record r{src, "results", first_index + i};
    bool has_image = false, has_category = false, has_score = false, has_fallback = false, has_box = false;
    double score = 0, fallback = 0;
    int64_t image = 0, category = 0;
    std::array<double, 4> box{};
    kps.reset();
    const size_t before = dt.keypoints.size();
    for_each_field(r, v, [&](std::string_view key, od::value f) {
      if (key == "image_id") {
        image = r.integer(f, key);
        has_image = true;
      } else if (key == "category_id") {
        category = r.integer(f, key);
        has_category = true;
      } else if (key == layout.score_key) {
        score = r.number(f, key);
        has_score = true;
      } else if (key == "score") {
        fallback = r.number(f, key);
        has_fallback = true;
      } else if (key == "bbox") {
        std::vector<double> b;
        r.numbers(f, key, b);
        // pycocotools treats an empty box as none.
        if (!b.empty()) {
          if (b.size() != 4) r.fail(key, "has " + std::to_string(b.size()) + " values; a box is [x, y, width, height]");
          box = {b[0], b[1], b[2], b[3]};
          has_box = true;
        }
      } else {
        kps.read(r, key, f, &dt.keypoints);
      }
    });
    if (!has_image) r.fail("image_id", "is missing");
    if (!has_category) r.fail("category_id", "is missing");
    if (!has_score && !has_fallback) r.fail(layout.score_key, "is missing");
    kps.append_to(r, dt.keypoints);
    const int64_t k = static_cast<int64_t>((dt.keypoints.size() - before) / 3);
    if (i == 0) {
      dt.keypoint_count = k;
      dt.has_bbox = has_box;  // pycocotools decides from the first result
    } else if (k != dt.keypoint_count) {
      r.fail(layout.keys.front(), "holds " + std::to_string(k) + " keypoints but results[0] holds " +
                                      std::to_string(dt.keypoint_count) + "; every result needs the same count");
    }
    if (dt.has_bbox) {
      if (!has_box) r.fail("bbox", "is missing, but results[0] has one (areas then come from every result's box)");
      dt.bbox.insert(dt.bbox.end(), box.begin(), box.end());
    }
    dt.image_id.push_back(image);
    dt.category_id.push_back(category);
    dt.score.push_back(has_score ? score : fallback);
    ++i;
  }
  check_trailing(src, doc);
  return dt;
}

void read_images(const Record& top, od::value v, GroundTruth& gt) {
  size_t i = 0;
  for (auto item : top.array(v, "images")) {
    od::value e;
    if (item.get(e)) top.src.malformed(item.error());
    Record r{top.src, "images", i++};
    Image img;
    bool has_id = false;
    for_each_field(r, e, [&](std::string_view key, od::value f) {
      if (key == "id") {
        img.id = r.integer(f, key);
        has_id = true;
      } else if (key == "crowdIndex") {
        img.crowd_index = r.number(f, key);
      }
    });
    if (!has_id) r.fail("id", "is missing");
    gt.images.push_back(img);
  }
}

void read_categories(const Record& top, od::value v, GroundTruth& gt) {
  size_t i = 0;
  for (auto item : top.array(v, "categories")) {
    od::value e;
    if (item.get(e)) top.src.malformed(item.error());
    Record r{top.src, "categories", i++};
    Category cat;
    bool has_id = false;
    for_each_field(r, e, [&](std::string_view key, od::value f) {
      std::string_view s;
      if (key == "id") {
        cat.id = r.integer(f, key);
        has_id = true;
      } else if (key == "name") {
        r.check(f.get_string().get(s), key, f, "a string");
        cat.name = std::string(s);
      } else if (key == "keypoints") {
        for (auto n : r.array(f, key)) {
          od::value name;
          if (n.get(name)) top.src.malformed(n.error());
          r.check(name.get_string().get(s), key, name, "a list of keypoint names (strings)");
          cat.keypoint_names.emplace_back(s);
        }
      } else if (key == "skeleton") {
        for (auto p : r.array(f, key)) {
          od::value pair;
          if (p.get(pair)) top.src.malformed(p.error());
          std::vector<int64_t> ends;
          for (auto end : r.array(pair, key)) {
            od::value e;
            if (end.get(e)) top.src.malformed(end.error());
            ends.push_back(r.integer(e, key));
          }
          if (ends.size() != 2) r.fail(key, "must hold pairs of keypoint numbers");
          cat.skeleton.push_back({ends[0], ends[1]});
        }
      }
    });
    if (!has_id) r.fail("id", "is missing");
    gt.categories.push_back(std::move(cat));
  }
}

void read_annotations(const Record& top, od::value v, const Layout& layout, GroundTruth& gt) {
  KeypointFields kps(layout);
  size_t i = 0;
  for (auto item : top.array(v, "annotations")) {
    od::value e;
    if (item.get(e)) top.src.malformed(item.error());
    Record r{top.src, "annotations", i++};
    Annotation a;
    bool has_image = false, has_category = false, has_box = false;
    kps.reset();
    for_each_field(r, e, [&](std::string_view key, od::value f) {
      if (key == "id") {
        a.id = r.integer(f, key);
        r.id = a.id;
        r.has_id = true;
      } else if (key == "image_id") {
        a.image_id = r.integer(f, key);
        has_image = true;
      } else if (key == "category_id") {
        a.category_id = r.integer(f, key);
        has_category = true;
      } else if (key == "bbox") {
        a.bbox = r.box(f, key);
        has_box = true;
      } else if (key == "area") {
        a.area = r.number(f, key);
        a.has_area = true;
      } else if (key == "iscrowd") {
        a.iscrowd = r.flag(f, key);
      } else if (key == "num_keypoints") {
        a.num_keypoints = r.integer(f, key);
      } else if (key == "ignore") {
        a.ignore = r.flag(f, key) ? 1 : 0;
      } else {
        kps.read(r, key, f);
      }
    });
    if (!r.has_id) r.fail("id", "is missing");
    if (!has_image) r.fail("image_id", "is missing");
    if (!has_category) r.fail("category_id", "is missing");
    if (!has_box) r.fail("bbox", "is missing (OKS needs the box when a ground truth has no labelled keypoint)");
    kps.append_to(r, a.keypoints);
    gt.annotations.push_back(std::move(a));
  }
}

// Unique ids; every annotation on a known image and category.
void check_references(const GroundTruth& gt) {
  std::unordered_set<int64_t> images, categories, annotations;
  for (size_t i = 0; i < gt.images.size(); ++i)
    if (!images.insert(gt.images[i].id).second)
      throw Error(gt.source + ": images[" + std::to_string(i) + "]: field 'id' " + std::to_string(gt.images[i].id) +
                  " is used by another image");
  for (size_t i = 0; i < gt.categories.size(); ++i)
    if (!categories.insert(gt.categories[i].id).second)
      throw Error(gt.source + ": categories[" + std::to_string(i) + "]: field 'id' " +
                  std::to_string(gt.categories[i].id) + " is used by another category");
  for (size_t i = 0; i < gt.annotations.size(); ++i) {
    const auto& a = gt.annotations[i];
    const std::string rec = gt.source + ": annotations[" + std::to_string(i) + "] (id " + std::to_string(a.id) + "): ";
    if (!images.count(a.image_id))
      throw Error(rec + "field 'image_id' " + std::to_string(a.image_id) + " is not in 'images'");
    if (!categories.count(a.category_id))
      throw Error(rec + "field 'category_id' " + std::to_string(a.category_id) + " is not in 'categories'");
    if (!annotations.insert(a.id).second)
      throw Error(rec + "field 'id' " + std::to_string(a.id) + " is used by another annotation (ids must be unique)");
  }
}

GroundTruth parse_ground_truth_text(const char* data, size_t len, const std::string& name, const Layout& layout) {
  od::parser parser;
  od::document doc;
  Source src{name, std::string_view(data, len)};
  if (auto err = parser.iterate(simdjson::padded_string_view(data, len, len + simdjson::SIMDJSON_PADDING)).get(doc))
    src.malformed(err);
  src.doc = &doc;
  od::object root;
  if (auto err = doc.get_object().get(root)) {
    if (err == simdjson::INCORRECT_TYPE)
      throw Error(name + ": the ground truth must be a JSON object with images, annotations and categories");
    src.malformed(err);
  }
  GroundTruth gt;
  gt.source = name;
  gt.keypoint_keys = layout.keys;
  bool seen[3] = {false, false, false};
  Record top{src, "top level"};  // only arrays are read through it
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) src.malformed(field.error());
    if (key == "images") {
      read_images(top, field.value(), gt);
      seen[0] = true;
    } else if (key == "annotations") {
      read_annotations(top, field.value(), layout, gt);
      seen[1] = true;
    } else if (key == "categories") {
      read_categories(top, field.value(), gt);
      seen[2] = true;
    }
  }
  check_trailing(src, doc);
  const char* names[3] = {"images", "annotations", "categories"};
  for (int i = 0; i < 3; ++i)
    if (!seen[i]) throw Error(name + ": the ground truth has no '" + names[i] + "' array");
  check_references(gt);
  return gt;
}

// A file's text, mapped privately (copy-on-write, so the parser may mark a split in
// place) and followed by simdjson's padding: an anonymous mapping of the padded size is
// laid down first and the file is mapped over its start, so the bytes after the end
// are readable zeros even when the file ends at a page boundary. MAP_POPULATE maps all
// pages at once instead of one fault per page.
class FileText {
 public:
  explicit FileText(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path + ": cannot read the file (" + std::strerror(errno) + ")");
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(path + ": cannot read the file (not a regular file)");
    }
    size_ = static_cast<size_t>(st.st_size);
    mapped_ = size_ + simdjson::SIMDJSON_PADDING;
    void* base = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
      ::close(fd);
      throw Error(path + ": cannot map the file (" + std::strerror(errno) + ")");
    }
    // Populated read-only, the mapping shares the page cache's pages (no copy); write
    // access is added afterwards, and only a page actually written is copied.
    if (size_ > 0 && (mmap(base, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0) == MAP_FAILED ||
                      mprotect(base, size_, PROT_READ | PROT_WRITE) != 0)) {
      munmap(base, mapped_);
      ::close(fd);
      throw Error(path + ": cannot map the file (" + std::strerror(errno) + ")");
    }
    ::close(fd);
    data_ = static_cast<char*>(base);
  }
  ~FileText() { munmap(data_, mapped_); }
  FileText(const FileText&) = delete;
  FileText& operator=(const FileText&) = delete;
  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0, mapped_ = 0;
};

}  // namespace

GroundTruth parse_ground_truth(std::string_view json, const std::string& source, const Layout& layout) {
  const simdjson::padded_string text(json);
  return parse_ground_truth_text(text.data(), text.size(), source, layout);
}

GroundTruth load_ground_truth(const std::string& path, const Layout& layout) {
  const FileText text(path);
  return parse_ground_truth_text(text.data(), text.size(), path, layout);
}

Detections parse_detections(std::string_view json, const std::string& source, const Layout& layout) {
  const simdjson::padded_string text(json);
  return parse_detections_text(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING, source, layout);
}

Detections load_detections(const std::string& path, const Layout& layout) {
  const FileText text(path);
  return parse_detections_text(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING, path, layout);
}

// Parallel loading of a large results file: the text is cut at a record boundary
// near `share` of its length and the two halves are parsed as two arrays, the second
// on `other` (which may run other work first). A cut is accepted only if the first
// half parses as a complete JSON array, which is impossible when the cut falls inside
// a string or a nested value; on any error the whole file is parsed again in one piece
// so that messages carry the file's own record numbers and lines.
Detections load_detections_split(const std::string& path, const Layout& layout, double share,
                                 const std::function<void(std::function<void()>)>& other) {
  FileText text(path);
  char* data = text.data();
  const size_t n = text.size();
  auto whole = [&] { return parse_detections_text(data, n, n + simdjson::SIMDJSON_PADDING, path, layout); };
  // The first "}," followed by spaces and "{" after the target offset; the comma
  // becomes the first half's "]" and the byte before "{" the second half's "[".
  size_t cut = static_cast<size_t>(static_cast<double>(n) * std::clamp(share, 0.05, 0.95));
  size_t comma = std::string::npos, open = std::string::npos;
  for (size_t i = cut; i + 2 < n && i < cut + (1u << 20); ++i) {
    if (data[i] != '}') continue;
    size_t j = i + 1;
    while (j < n && (data[j] == ' ' || data[j] == '\n' || data[j] == '\r' || data[j] == '\t')) ++j;
    if (j >= n || data[j] != ',') continue;
    size_t k = j + 1;
    while (k < n && (data[k] == ' ' || data[k] == '\n' || data[k] == '\r' || data[k] == '\t')) ++k;
    if (k < n && data[k] == '{' && k > j + 1) {
      comma = j;
      open = k - 1;
      break;
    }
  }
  if (comma == std::string::npos) return whole();
  const char saved_comma = data[comma], saved_open = data[open];
  data[comma] = ']';
  data[open] = '[';
  Detections first, second;
  bool ok = true;
  std::exception_ptr second_error;
  other([&] {
    try {
      second = parse_detections_text(data + open, n - open, n - open + simdjson::SIMDJSON_PADDING, path, layout);
    } catch (...) {
      second_error = std::current_exception();
    }
  });
  try {
    // The first half ends at the comma; the bytes after it serve as simdjson's padding.
    first = parse_detections_text(data, comma + 1, n + simdjson::SIMDJSON_PADDING, path, layout);
  } catch (...) {
    ok = false;
  }
  other(nullptr);  // wait for the second half
  data[comma] = saved_comma;
  data[open] = saved_open;
  if (!ok || second_error || (second.size() && first.size() &&
                              (second.has_bbox != first.has_bbox || second.keypoint_count != first.keypoint_count)))
    return whole();
  if (first.size() == 0) return second;
  auto append = [](auto& a, const auto& b) { a.insert(a.end(), b.begin(), b.end()); };
  append(first.image_id, second.image_id);
  append(first.category_id, second.category_id);
  append(first.score, second.score);
  append(first.keypoints, second.keypoints);
  append(first.bbox, second.bbox);
  return first;
}

}  // namespace fancy::keypoints
