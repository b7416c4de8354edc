// Fuzz target: the input readers behind the CLI (src/io/inputs.cpp): --prompts FILE as plain text and as
// JSONL, generic JSONL records, --inputs IN.safetensors (int64 input_ids / attention_mask) and
// --layers specs.
//
// Input: byte 0 picks the reader (mod 5), the rest is the file content (or, for --layers,
// byte 1 is the number of layers and the rest the spec).
#include <sstream>

#include "fuzz_common.hpp"
#include "io/jsonl.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/safetensors.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  const uint8_t mode = in.byte() % 5;
  switch (mode) {
    case 0:
    case 1: {  // --prompts FILE: one prompt per line, or JSONL
      std::istringstream s{std::string(in.rest())};
      accepts([&] {
        auto prompts = io::read_prompts(s, mode == 1, "prompts.txt");
        for (const auto& p : prompts) require(mode == 1 || (!p.empty() && p.find('\n') == std::string::npos), "one prompt per line");
      });
      break;
    }
    case 2: {  // any JSONL file
      std::istringstream s{std::string(in.rest())};
      accepts([&] { io::read_jsonl(s, "records.jsonl"); });
      break;
    }
    case 3: {  // --inputs IN.safetensors
      std::vector<uint8_t> bytes(in.p, in.p + in.n);
      accepts([&] {
        auto file = io::SafetensorsFile::parse_buffer(std::move(bytes), "inputs.safetensors");
        TokenBatch b = io::read_token_inputs(*file);
        require(b.input_ids.dim() == 2 && b.input_ids.sizes() == b.attention_mask.sizes(), "input_ids and mask [B, T]");
        require(b.input_ids.scalar_type() == torch::kInt64 && b.attention_mask.scalar_type() == torch::kInt64, "int64");
      });
      break;
    }
    default: {  // --layers SPEC for a model of n layers
      const int64_t n = in.byte();
      const std::string spec(in.rest());
      accepts([&] {
        auto layers = io::parse_layers(spec, n);
        for (int l : layers) require(l >= 0 && l < n, "layers in range");
      });
      break;
    }
  }
  return 0;
}
