#pragma once
// A typed handle to one of fancy's ops in the dispatcher.
#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

namespace fancy {
namespace ops {

template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fancy::" + name).c_str(), "")
      .template typed<Signature>();
}

}  // namespace ops
}  // namespace fancy
