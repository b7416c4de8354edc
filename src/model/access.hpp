// The model layer's view of a LanguageModel: its decoder and ArchSpec. Only src/model may include
// this; the layers above use LanguageModel's public interface.
#pragma once

#include "model/arch.hpp"
#include "nnterp/language_model.hpp"

namespace nnterp {

namespace model {
class Decoder;
}

struct LanguageModelAccess {
  static const model::Decoder& decoder(const LanguageModel& model);
  static model::Decoder& decoder(LanguageModel& model);  // for the weight edits (params.cpp)
  static const model::ArchSpec& spec(const LanguageModel& model);
};

}  // namespace nnterp
