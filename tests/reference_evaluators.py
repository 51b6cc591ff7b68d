"""Transcriptions of upstream evaluators, written as plain loops, for tests to compare against.

`rga_reference`: microsoft/Relation-Aware-Global-Attention-Networks `reid/evaluation_metrics/ranking.py`
(`cmc(first_match_break=True)`, `mean_ap` with sklearn's `average_precision_score`), after dropping
Market-1501's junk (-1) crops.
"""

import numpy as np


def sklearn_average_precision(y_true, y_score):
    """sklearn.metrics.average_precision_score for binary labels: sum_n (R_n - R_{n-1}) P_n over thresholds."""
    thresholds = sorted(set(y_score), reverse=True)
    total_pos = sum(y_true)
    ap, prev_recall = 0.0, 0.0
    for t in thresholds:
        predicted = [s >= t for s in y_score]
        tp = sum(1 for p, y in zip(predicted, y_true) if p and y)
        precision = tp / sum(predicted)
        recall = tp / total_pos
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def rga_reference(dist, qids, gids, qcams, gcams, topk=100):
    """RGA ranking.py `cmc(first_match_break=True)` and `mean_ap`, after dropping junk (-1) crops."""
    gkeep = [j for j in range(len(gids)) if gids[j] != "-1"]
    queries = [i for i in range(len(qids)) if qids[i] != "-1"]
    ret = [0.0] * topk
    aps, valid_queries = [], 0
    for i in queries:
        order = sorted(gkeep, key=lambda j: (dist[i][j], j))
        valid = [j for j in order if gids[j] != qids[i] or gcams[j] != qcams[i]]
        matches = [gids[j] == qids[i] for j in valid]
        if not any(matches):
            continue
        k = matches.index(True)
        if k < topk:
            ret[k] += 1
        valid_queries += 1
        aps.append(sklearn_average_precision(matches, [-dist[i][j] for j in valid]))
    cmc = np.cumsum(ret) / valid_queries
    return cmc, float(np.mean(aps)), valid_queries
