// The project's one random generator, splitmix64: small, seedable, and the same sequence on every compiler and
// machine (unlike the standard library's distributions), so seeded data and sampling are reproducible everywhere.
#pragma once
#include <cstdint>

namespace headscope {

// The next 64 random bits; `state` carries the generator (seed it with any value).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace headscope
