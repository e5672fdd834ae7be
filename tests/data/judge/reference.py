#!/usr/bin/env python3
"""Produces the reference values of tests/judge_reference.rs with the real tools.

    python3 tests/data/judge/reference.py > /tmp/cases.rs   # needs Rscript (r-base-core) and scipy

For every case it computes, from the same data,
  R:     r <- wilcox.test(canary, baseline, conf.int = TRUE, conf.level = 0.98,
                          exact = FALSE, correct = TRUE)
         -> r$statistic (W), r$p.value, r$estimate, r$conf.int  (printed with sprintf("%.17g"))
         (for samples that are both constant R's interval search fails; then only
          wilcox.test(canary, baseline, exact = FALSE, correct = TRUE)$p.value is kept)
  SciPy: scipy.stats.mannwhitneyu(canary, baseline, use_continuity=True,
                                  alternative="two-sided", method="asymptotic")
         -> statistic (U of the canary) and pvalue
and prints the Rust table. Large samples come from a Park-Miller LCG that R, Python and the Rust
test all implement: s <- (16807 * s) mod (2^31 - 1), u = s / (2^31 - 1);
kind "cont": loc + scale * (u1 + u2 + u3) (three draws), kind "int": floor(scale * u) + loc.
"""
import math
import os
import subprocess
import sys
import tempfile

from scipy.stats import mannwhitneyu

M = 2147483647


def gen(seed, n, kind, loc, scale):
    s, out = seed, []
    def nxt():
        nonlocal s
        s = (16807 * s) % M
        return s / M
    for _ in range(n):
        if kind == "cont":
            u1 = nxt(); u2 = nxt(); u3 = nxt()
            out.append(loc + scale * (u1 + u2 + u3))
        else:
            out.append(math.floor(scale * nxt()) + loc)
    return out


def lit(*v):
    return ("lit", [float(x) for x in v])


def g(seed, n, kind, loc, scale):
    return ("gen", seed, n, kind, float(loc), float(scale))


# name, canary, baseline
CASES = [
    ("tiny_3v3_shift", lit(4.1, 5.2, 6.3), lit(1.0, 2.5, 3.7)),
    ("tiny_3v3_overlap", lit(1.5, 3.0, 4.5), lit(2.0, 3.5, 5.0)),
    ("small_ties_5v6", lit(1, 2, 2, 3, 5), lit(2, 2, 3, 3, 4, 4)),
    ("identical_varied", lit(1, 2, 3, 4, 5, 6), lit(1, 2, 3, 4, 5, 6)),
    ("constant_but_different", lit(3, 3, 3, 3), lit(2, 2, 2, 2, 2)),
    ("one_constant", lit(5, 5, 5, 5, 5), lit(1, 2, 3, 4, 5, 6, 7)),
    ("latency_10v10_up30", lit(262, 281, 255, 300, 247, 290, 271, 266, 310, 259),
                           lit(201, 215, 188, 230, 207, 199, 222, 210, 195, 218)),
    ("negative_values", lit(-3.5, -1.25, 0.0, 2.5, -0.75, 1.0),
                        lit(-5.0, -2.5, -4.25, -1.0, -3.0, 0.5, -2.0)),
    ("one_vs_59", lit(1), ("lit", [float(v) for v in range(2, 61)])),
    ("separated_20v20", g(11, 20, "cont", 50, 10), g(12, 20, "cont", 10, 10)),
    ("error_rate_60v60", g(21, 60, "cont", 0.0095, 0.001), g(22, 60, "cont", 0.0075, 0.001)),
    ("error_rate_percent_60v60", g(21, 60, "cont", 0.95, 0.1), g(22, 60, "cont", 0.75, 0.1)),
    ("unequal_3v40", g(31, 3, "cont", 10, 2), g(32, 40, "cont", 9, 2)),
    ("cont_100v100_null", g(41, 100, "cont", 100, 20), g(42, 100, "cont", 100, 20)),
    ("cont_100v100_shift", g(43, 100, "cont", 110, 20), g(44, 100, "cont", 100, 20)),
    ("int_200v200_ties", g(51, 200, "int", 0, 5), g(52, 200, "int", 0, 5)),
    ("int_1000v1000_shift", g(53, 1000, "int", 1, 6), g(54, 1000, "int", 0, 6)),
    ("big_magnitude_ties", g(55, 300, "int", 1000000, 40), g(56, 250, "int", 1000010, 40)),
    ("cont_1000v1000_small", g(61, 1000, "cont", 1.02, 0.3), g(62, 1000, "cont", 1.0, 0.3)),
    ("cont_2000v2000_huge_shift", g(63, 2000, "cont", 3, 1), g(64, 2000, "cont", 1, 1)),
    ("identical_gen_500", g(65, 500, "cont", 7, 3), g(65, 500, "cont", 7, 3)),
    ("n3_vs_10000", g(71, 3, "cont", 0.5, 0.2), g(72, 10000, "cont", 0.3, 0.2)),
    ("n10000_vs_50", g(73, 10000, "cont", 20, 4), g(74, 50, "cont", 21, 4)),
    ("cont_10000_null", g(81, 10000, "cont", 200, 40), g(82, 10000, "cont", 200, 40)),
    ("cont_10000_up30", g(83, 10000, "cont", 260, 40), g(84, 10000, "cont", 200, 40)),
    ("int_10000_ties", g(85, 10000, "int", 0, 10), g(86, 10000, "int", 0, 10)),
]


def data(spec):
    return spec[1] if spec[0] == "lit" else gen(*spec[1:])


def r_expr(spec):
    if spec[0] == "lit":
        return "c(" + ", ".join(repr(v) for v in spec[1]) + ")"
    _, seed, n, kind, loc, scale = spec
    return f'gen({seed}, {n}, "{kind}", {loc!r}, {scale!r})'


R_PRELUDE = r'''
gen <- function(seed, n, kind, loc, scale) {
  s <- seed; out <- numeric(n)
  for (i in seq_len(n)) {
    if (kind == "cont") {
      s <- (16807 * s) %% 2147483647; u1 <- s / 2147483647
      s <- (16807 * s) %% 2147483647; u2 <- s / 2147483647
      s <- (16807 * s) %% 2147483647; u3 <- s / 2147483647
      out[i] <- loc + scale * (u1 + u2 + u3)
    } else {
      s <- (16807 * s) %% 2147483647
      out[i] <- floor(scale * (s / 2147483647)) + loc
    }
  }
  out
}
f <- function(v) sprintf("%.17g", v)
judge <- function(name, x, y) {
  r <- tryCatch(wilcox.test(x, y, conf.int = TRUE, conf.level = 0.98, exact = FALSE, correct = TRUE),
                error = function(e) NULL)
  if (is.null(r)) {
    r <- wilcox.test(x, y, exact = FALSE, correct = TRUE)
    cat(name, f(r$statistic), f(r$p.value), "NA", "NA", "NA", f(sum(x)), f(sum(y)), "\n")
  } else {
    cat(name, f(r$statistic), f(r$p.value), f(r$estimate), f(r$conf.int[1]), f(r$conf.int[2]),
        f(sum(x)), f(sum(y)), "\n")
  }
}
'''


def rust_sample(spec):
    if spec[0] == "lit":
        return "Lit(&[" + ", ".join(repr(v) for v in spec[1]) + "])"
    _, seed, n, kind, loc, scale = spec
    k = "Cont" if kind == "cont" else "Int"
    return f"Gen {{ seed: {seed}, n: {n}, kind: {k}, loc: {loc!r}, scale: {scale!r} }}"


def main():
    script = R_PRELUDE + "\n".join(
        f'suppressWarnings(judge("{n}", {r_expr(c)}, {r_expr(b)}))' for n, c, b in CASES)
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(["Rscript", fh.name], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(fh.name)
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    r_version = subprocess.run(["Rscript", "-e", "cat(R.version.string)"], check=True,
                               capture_output=True, text=True).stdout
    import scipy
    print(f"// Generated by tests/data/judge/reference.py with {r_version} and SciPy {scipy.__version__}.")
    for name, cs, bs in CASES:
        x, y = data(cs), data(bs)
        w, p, est, lo, hi, sx, sy = rows[name]
        # The generator must agree bit for bit between R and Python.
        assert float(sx) == math.fsum(x) or abs(float(sx) - sum(x)) <= 1e-9 * abs(sum(x)) + 1e-12, name
        res = mannwhitneyu(x, y, use_continuity=True, alternative="two-sided", method="asymptotic")
        shift = "None" if est == "NA" else f"Some(({float(est)!r}, {float(lo)!r}, {float(hi)!r}))"
        print("    Case {")
        print(f'        name: "{name}",')
        print(f"        canary: {rust_sample(cs)},")
        print(f"        baseline: {rust_sample(bs)},")
        print(f"        r_w: {float(w)!r},")
        print(f"        r_p: {float(p)!r},")
        print(f"        r_shift: {shift},")
        print(f"        scipy_u: {float(res.statistic)!r},")
        print(f"        scipy_p: {float(res.pvalue)!r},")
        print("    },")


if __name__ == "__main__":
    sys.exit(main())
