// ATen operators that tch 0.24 does not expose with the arguments unet-core needs.
//
// Built by unet-core's build script against the libtorch tch links; every function returns
// NULL on success or a malloc'd error message (freed with unet_ops_free_error).
#include <ATen/ops/leaky_relu.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

extern "C" {

void unet_ops_free_error(char* err) { free(err); }

// In-place LeakyReLU with any slope, recorded by autograd (tch only has slope 0.01): PyTorch's
// `leaky_relu(x, slope, inplace=True)`. Its backward reads the result, not the input.
char* unet_ops_leaky_relu_(at::Tensor* t, double slope) {
  try {
    at::leaky_relu_(*t, slope);
    return nullptr;
  } catch (const c10::Error& e) {
    return strdup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return strdup(e.what());
  } catch (...) {
    return strdup("unknown C++ exception");
  }
}

}  // extern "C"
