// Axis and colour scales (core/scale.h) against hand-worked values: nice ticks, their labels, log and linear
// colour positions, and each statistic's natural range.
#include <cmath>

#include "core/scale.h"
#include "core/text.h"
#include "testing.h"

using namespace headscope;

TEST_CASE("nice ticks and their labels", "[scale]") {
  // 0..1 with at most 6 ticks: step 0.2.
  auto t = nice_ticks(0, 1, 6);
  REQUIRE(t.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(t[i] == Approx(0.2 * i));
  CHECK(tick_label(t[1], t) == "0.2");
  CHECK(tick_label(t[5], t) == "1.0");
  // 0..6.04 with at most 5: raw step 1.51 -> 2; labels without decimals (the old "6.04e-" clipping).
  t = nice_ticks(0, 6.04, 5);
  REQUIRE(t.size() == 4);
  CHECK(t.back() == 6);
  CHECK(tick_label(t[3], t) == "6");
  // 0..1000: not "1e+03".
  t = nice_ticks(0, 1000, 3);
  CHECK(tick_label(t.back(), t) == "1000");
  // A log scale's ticks are the decades in the range.
  t = nice_ticks(1e-4, 1, 6, true);
  REQUIRE(t.size() == 5);
  CHECK(t[0] == Approx(1e-4));
  CHECK(tick_label(t[0], t, true) == "1e-4");
  CHECK(tick_label(t[4], t, true) == "1");
}

TEST_CASE("colour positions: linear, log, and the statistics' fixed ranges", "[scale]") {
  Scale lin{0, 1};
  CHECK(lin.unit(0.129) == Approx(0.129));  // a sink mass of 0.129 is not drawn as bright as 1.0
  CHECK(lin.unit(2) == 1);
  CHECK(std::isnan(lin.unit(NAN)));
  Scale lg{0, 1, true};
  CHECK(lg.unit(1e-2) == Approx(0.5));       // log10: -4 .. 0, -2 in the middle
  CHECK(lg.unit(0) == 0);
  CHECK(head_stat_range(kStatSinkMass, 100).hi == 1);
  CHECK(head_stat_range(kStatEntropy, 100).hi == Approx(std::log(100.0)));
  CHECK(head_stat_range(kStatMeanDist, 100).hi == 99);
  CHECK(head_stat_range(kStatWaad, 100, 10).hi == 10);
}

TEST_CASE("tokens drawn with visible whitespace", "[scale]") {
  CHECK(visible_token(" the") == "\xc2\xb7the");
  CHECK(visible_token("\n") == "\xe2\x86\xb5");
  CHECK(visible_token("a\x01") == "a\\x01");
  CHECK(join({"entropy", "max_prob", "sink_mass"}) == "entropy, max_prob, sink_mass");
  CHECK(join({}) == "");
}
