#pragma once
// A typed handle to one of fancy's ops in the dispatcher.
#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

namespace fancy {
namespace ops {

// "<stem><nd>d": the name of an op's 1-, 2- or 3-D form.
inline std::string nd_op_name(const char* stem, int64_t nd) { return std::string(stem) + std::to_string(nd) + "d"; }

template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fancy::" + name).c_str(), "")
      .template typed<Signature>();
}

}  // namespace ops
}  // namespace fancy
