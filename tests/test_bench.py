import bench


def test_bench_times_both_loops_and_reports_the_ratio(capsys):
    results = bench.main(["--steps", "2", "--warmup", "1", "--batch", "8"])
    assert [r["loop"] for r in results] == ["naive", "fast", "fast mixed_bfloat16"]
    for r in results:
        assert r["images_per_s"] > 0 and r["ms_per_step"] > 0 and r["peak_mb"] > 0
        assert abs(r["s_per_epoch"] - 60_000 / r["images_per_s"]) < 1e-6 * r["s_per_epoch"]
    assert "speed-up fast / naive:" in capsys.readouterr().out
