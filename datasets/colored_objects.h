// Colored Objects prompts (the 1-shot form Merullo et al. use, METRICS.md §5): one solved example, a blank line, then
// "Q: On the table, there is a red pen, a blue cup, and a green key. What color is the cup?\nA:" -> " Blue" (title case). The corrupt prompt asks for
// another listed object, so its answer is that object's colour. Three distinct colours and objects per prompt,
// seeded; colours whose title-case form (" Red") and objects whose form (" pen") are not single tokens for the
// tokenizer in use are dropped, and counted (one token each keeps clean and corrupt prompts position-aligned).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace headscope {

struct ColoredObjectsPrompt {
  std::string clean, corrupt;
  std::string answer, corrupt_answer;  // title case, without the leading space
  std::vector<std::string> colours;    // the question's three colours in prompt order (lower case, as written)
};

struct ColoredObjectsSet {
  std::vector<ColoredObjectsPrompt> prompts;
  int64_t colours_kept = 0, colours_dropped = 0, objects_kept = 0, objects_dropped = 0;
};

// Error when fewer than 3 colours or 3 objects are single tokens.
ColoredObjectsSet make_colored_objects(int count, uint64_t seed, const std::function<std::vector<int32_t>(const std::string&)>& encode);

}  // namespace headscope
