"""Token windows with start/end labels for training; the CLS position (0) labels "no answer in this window"."""

from __future__ import annotations

from qa.training.squad import QAExample


def encode_examples(tokenizer, examples: list[QAExample], max_length: int, stride: int) -> list[dict]:
    """One feature per token window: input ids, attention mask, token type ids and the answer's token span."""
    encoded = tokenizer([e.question for e in examples], [e.context for e in examples], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    features = []
    for w, offsets in enumerate(encoded["offset_mapping"]):
        example = examples[encoded["overflow_to_sample_mapping"][w]]
        sequence = encoded.sequence_ids(w)
        start_token = end_token = 0
        if example.answer is not None:
            char_start = example.answer_start
            char_end = char_start + len(example.answer)
            context = [i for i, s in enumerate(sequence) if s == 1]
            if offsets[context[0]][0] <= char_start and offsets[context[-1]][1] >= char_end:
                start_token = next(i for i in context if offsets[i][1] > char_start)
                end_token = next(i for i in reversed(context) if offsets[i][0] < char_end)
        feature = {k: encoded[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded}
        feature.update(start_positions=start_token, end_positions=end_token)
        features.append(feature)
    return features
