// Builders that one architecture file exposes to another (a relative that derives from it).
// Each is defined in archs/<name>.cpp next to its NNTERP_ARCH registration.
#pragma once

#include "model/arch.hpp"

namespace nnterp::model {

ArchSpec gemma(const Config& c);   // archs/gemma.cpp
ArchSpec gemma2(const Config& c);  // archs/gemma2.cpp
ArchSpec gptj(const Config& c);    // archs/gptj.cpp
ArchSpec qwen2(const Config& c);   // archs/qwen2.cpp

}  // namespace nnterp::model
