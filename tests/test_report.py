from movierec.report import render_report

COUNTS = {"n_test": 100, "n_users": 10, "n_movies": 50}


def model(n_evaluated, n_eligible, sampled):
    return {"rmse": 0.9, "ndcg_at_10": 0.1, "n_users_evaluated": n_evaluated, "n_users_eligible": n_eligible, "users_sampled": sampled}


def test_report_says_when_ranking_figures_come_from_a_sample_of_users():
    full = render_report({"a": model(590, 590, False), "mean": {"rmse": 1.0}}, COUNTS, 10, 4.0)
    assert "averaged over 590 users." in full and "sample" not in full
    sampled = render_report({"a": model(2000, 150000, True), "mean": {"rmse": 1.0}}, COUNTS, 10, 4.0)
    assert "a seeded sample of 2,000 of the 150,000 users with a relevant test movie (`evaluate.max_users`" in sampled


def test_training_curves_are_drawn_two_panels_a_row(tmp_path):
    """Four variants side by side made a 2,560-pixel-wide strip, unreadable on a repository page."""
    import matplotlib.image

    from movierec.report import plot_training_curves

    curve = {"train loss": [1.0, 0.8, 0.7], "eval loss": [0.9, 0.85, 0.86]}
    for n, (rows, cols) in {1: (1, 1), 2: (1, 2), 3: (2, 2), 4: (2, 2)}.items():
        path = tmp_path / f"curves{n}.png"
        plot_training_curves({f"variant{i}": curve for i in range(n)}, path)
        height, width = matplotlib.image.imread(path).shape[:2]
        assert (height, width) == (420 * rows, 640 * cols), n
