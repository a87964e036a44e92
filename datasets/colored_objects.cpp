// Colored Objects prompts (see colored_objects.h).
#include "datasets/colored_objects.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/random.h"

namespace headscope {

namespace {
const std::vector<std::string> kColours = {"red", "orange", "yellow", "green", "blue", "purple", "black", "white"};
const std::vector<std::string> kObjects = {"pen",  "book", "cup",  "ball", "hat",   "key",   "phone", "bag",  "box",
                                           "shoe", "sock", "spoon", "plate", "ring", "card", "lamp",  "clock"};
const std::vector<std::string> kPlaces = {"table", "desk", "floor"};
const std::vector<std::string> kSeeing = {"there is", "you see", "I see"};

std::string title(std::string s) {
  s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
}  // namespace

ColoredObjectsSet make_colored_objects(int count, uint64_t seed, const std::function<std::vector<int32_t>(const std::string&)>& encode) {
  if (count < 1) throw Error("Colored Objects needs at least one prompt");
  ColoredObjectsSet set;
  std::vector<std::string> colours, objects;
  for (const std::string& c : kColours) {
    if (encode(" " + title(c)).size() == 1 && encode(" " + c).size() == 1) colours.push_back(c);
    else ++set.colours_dropped;
  }
  for (const std::string& o : kObjects) {
    if (encode(" " + o).size() == 1) objects.push_back(o);
    else ++set.objects_dropped;
  }
  set.colours_kept = static_cast<int64_t>(colours.size()), set.objects_kept = static_cast<int64_t>(objects.size());
  if (colours.size() < 3 || objects.size() < 3)
    throw Error("Colored Objects: " + std::to_string(colours.size()) + " of " + std::to_string(kColours.size()) + " colours and " +
                std::to_string(objects.size()) + " of " + std::to_string(kObjects.size()) +
                " objects are single tokens for this tokenizer; the task needs three of each");
  uint64_t s = seed;
  auto three = [&](const std::vector<std::string>& v) {  // three distinct entries
    std::vector<std::string> out;
    while (out.size() < 3) {
      const std::string& x = v[splitmix64(s) % v.size()];
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    }
    return out;
  };
  // One prompt's question (clean and corrupt) with its answers.
  auto question = [&](ColoredObjectsPrompt& p) {
    const auto c = three(colours), o = three(objects);
    const std::string place = kPlaces[splitmix64(s) % kPlaces.size()], seeing = kSeeing[splitmix64(s) % kSeeing.size()];
    const size_t q = splitmix64(s) % 3, other = (q + 1 + splitmix64(s) % 2) % 3;
    const std::string head = "Q: On the " + place + ", " + seeing + " a " + c[0] + " " + o[0] + ", a " + c[1] + " " + o[1] + ", and a " +
                             c[2] + " " + o[2] + ". What color is the ";
    p.clean = head + o[q] + "?\nA:";
    p.corrupt = head + o[other] + "?\nA:";
    p.answer = title(c[q]), p.corrupt_answer = title(c[other]);
    p.colours = c;
  };
  for (int i = 0; i < count; ++i) {
    ColoredObjectsPrompt shot, p;  // 1-shot: a solved example, then the question
    question(shot);
    question(p);
    const std::string example = shot.clean + " " + shot.answer + "\n\n";
    p.clean = example + p.clean, p.corrupt = example + p.corrupt;
    set.prompts.push_back(std::move(p));
  }
  return set;
}

}  // namespace headscope
