"""BLEU as sacreBLEU computes it, without torch.

    from fancy.bleu import corpus_bleu, sentence_bleu
    corpus_bleu(hypotheses, [refs_stream_1, refs_stream_2]).score      # 0..100
    sentence_bleu("The dog bit the man.", ["The dog had bit the man."]).score

Same arguments and defaults as sacreBLEU's functions (tokenize='13a', smooth_method=
'exp'; sentence_bleu uses effective order). The returned object has .score, .counts,
.totals, .precisions, .bp, .sys_len, .ref_len and formats like sacreBLEU's
(str(score) == "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = ...)").
"""

from ._native import load_extension

__all__ = ["corpus_bleu", "sentence_bleu", "compute_bleu", "tokenize", "signature", "BleuError"]


_b = load_extension('_fancy_bleu', 'FANCY_BLEU_MODULE')
BleuError = _b.BleuError  # a ValueError
tokenize = _b.tokenize
signature = _b.signature
compute_bleu = _b.compute_bleu


def corpus_bleu(hypotheses, references, smooth_method="exp", smooth_value=None, force=False, lowercase=False,
                tokenize="13a", use_effective_order=False):
    """Corpus BLEU of a list of hypotheses against one or more reference streams
    (each a list with one reference per hypothesis). `force` is accepted for
    sacreBLEU compatibility and ignored."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    if references and isinstance(references[0], str):
        references = [references]
    return _b.corpus_bleu(list(hypotheses), [list(r) for r in references], smooth_method, smooth_value, lowercase,
                          tokenize, use_effective_order)


def sentence_bleu(hypothesis, references, smooth_method="exp", smooth_value=None, lowercase=False, tokenize="13a",
                  use_effective_order=True):
    """BLEU of one hypothesis against its references (a list of strings)."""
    return _b.sentence_bleu(hypothesis, list(references), smooth_method, smooth_value, lowercase, tokenize,
                            use_effective_order)
