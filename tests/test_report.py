from movierec.report import render_report

COUNTS = {"n_test": 100, "n_users": 10, "n_movies": 50}


def model(n_evaluated, n_eligible, sampled):
    return {"rmse": 0.9, "ndcg_at_10": 0.1, "n_users_evaluated": n_evaluated, "n_users_eligible": n_eligible, "users_sampled": sampled}


def test_report_says_when_ranking_figures_come_from_a_sample_of_users():
    full = render_report({"a": model(590, 590, False), "mean": {"rmse": 1.0}}, COUNTS, 10, 4.0)
    assert "averaged over 590 users." in full and "sample" not in full
    sampled = render_report({"a": model(2000, 150000, True), "mean": {"rmse": 1.0}}, COUNTS, 10, 4.0)
    assert "a seeded sample of 2,000 of the 150,000 users with a relevant test movie (`evaluate.max_users`" in sampled
