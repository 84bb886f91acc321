"""Tests for llmlab.poems (the quatrain corpus, the form, constrained decoding, the measures) and
for llmlab.data.read_text_file (the learner's own text file)."""
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import llmlab.train
from llmlab.data import load_text, read_text_file
from llmlab.gpt import GPT, GPTConfig
from llmlab.lm import NeuralBigram
from llmlab.poems import (FORM7, POEM_LEN, FormMask, show_poem, split_poems, bytes_per_char, bytes_per_token, copied_poems,
                          form_rate, generate_poem, generate_poems, is_cjk, is_well_formed,
                          load_quatrains, memorised_lines, parse_quatrains, poem_lines, poems_text)
from llmlab.tokenizers import BPETokenizer, CharTokenizer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

POEM = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
# A vocabulary with everything a model could wrongly write inside a poem: ASCII and full-width
# punctuation, Latin, digits, spaces (ASCII and ideographic), kana, 〇 (not an ideograph) and "\n";
# and 21 CJK characters, one of them outside the BMP.
HAN = "白日依山尽黄河入海流欲穷千里目更上一层楼𠀀"
OTHER = "，。？！、,.;: abcXYZ0123\u3000の〇\n"
TOK = CharTokenizer.train(HAN + OTHER)


def random_gpt(seed: int, scale: float = 1.0, tok: CharTokenizer = TOK) -> GPT:
    """An untrained tiny GPT; scale > 1 makes it very sure of random tokens, most of them wrong."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16,
                          tie_weights=False))
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)  # the logits grow with it: sharp, random preferences
    return model


# ---------------------------------------------------------------------------------- the corpus

def test_the_seven_character_form_parses_its_own_corpus_and_nothing_else():
    seven = load_quatrains("tang7_simplified", FORM7)
    assert len(seven) == 10_265 and len(set(seven)) == len(seven)
    assert all(len(p) == 32 and p[7] == "，" and p[15] == "。" for p in seven)
    assert parse_quatrains(POEM, FORM7)[0] == []  # a five-character poem is not a seven
    assert "4 lines of 7 characters" in parse_quatrains("T\nA\n白日依山尽黄河，", FORM7)[1][0].detail


def test_split_poems_holds_out_whole_poems_at_the_same_cut_as_the_characters():
    poems = load_quatrains()
    train, val = split_poems(poems)
    assert (len(train), len(val)) == (3339, 371) and train + val == poems
    from llmlab.data import train_val_split
    ids = torch.arange(len(poems_text(poems)))
    assert len(train_val_split(ids, 0.1)[0]) == len(poems_text(train))  # 25 characters a poem
    with pytest.raises(ValueError, match="too few"):
        split_poems(poems[:1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_poems(poems, 1.5)


def test_show_poem_breaks_the_lines_after_each_mark_but_not_at_the_end():
    assert show_poem(POEM) == "白日依山尽，\n黄河入海流。\n欲穷千里目，\n更上一层楼。"
    assert show_poem("床前看月光，疑是") == "床前看月光，\n疑是"



def test_load_quatrains_gives_3710_distinct_well_formed_poems():
    poems = load_quatrains()
    assert len(poems) == 3710 and len(set(poems)) == 3710
    assert all(is_well_formed(p) and len(p) == POEM_LEN for p in poems)
    assert poems[1] == "燄听风来动，花开不待春。镇下千行泪，非是为思人。"  # title and author dropped


def test_the_shipped_corpus_skips_only_the_15_poems_simplification_made_duplicates():
    poems, skipped = parse_quatrains(load_text("tang5_simplified"))
    assert len(poems) + len(skipped) == 3725  # every block of the file is accounted for
    assert Counter(s.reason for s in skipped) == {"duplicate": 15}
    assert skipped[0].block == 279 and skipped[0].title == "堂堂词二首 一"


def test_parse_quatrains_counts_each_kind_of_bad_block_with_its_reason():
    text = ("静夜思\n李白\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n\n"
            "无诗\n某人\n\n"                                              # 2: no poem
            "七言\n某人\n白日依山尽黄河，入海流。\n欲穷千里目，更上一层楼。\n\n"  # 3: 7 characters
            "问\n某人\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡？\n\n"   # 4: ends in ？
            "重\n某人\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\r\n\r\n\n"  # 5: repeat
            "登鹳雀楼\n王之涣\n" + POEM[:12] + "\n" + POEM[12:] + "\n")
    poems, skipped = parse_quatrains(text)
    assert poems == ["床前明月光，疑是地上霜。举头望明月，低头思故乡。", POEM]
    assert [(s.block, s.reason) for s in skipped] == [
        (2, "no poem"), (3, "not a quatrain"), (4, "not a quatrain"), (5, "duplicate")]
    assert "character 5 is '黄'" in skipped[1].detail and "'？'" in skipped[2].detail


def test_poems_text_puts_one_poem_per_line_and_refuses_line_breaks_inside():
    assert poems_text([POEM, POEM]) == POEM + "\n" + POEM + "\n"
    with pytest.raises(ValueError, match=r"poems\[1\] contains a line break: write each poem as one"):
        poems_text([POEM, POEM[:12] + "\n" + POEM[12:]])


# -------------------------------------------------------------------------------------- the form


def test_is_well_formed_accepts_quatrains_including_characters_outside_the_bmp():
    assert is_well_formed(POEM)
    assert is_well_formed("𠀀" + POEM[1:])  # U+20000, CJK Extension B: one code point
    assert is_cjk("㐀") and is_cjk("𠀀") and not is_cjk("〇") and not is_cjk("の") and not is_cjk("白日")


@pytest.mark.parametrize("text", [
    POEM.replace("，", "。", 1),             # wrong punctuation after line 1
    POEM.replace("，", ",", 1),              # an ASCII comma
    POEM[:-1] + "？",                        # a question mark where the form has "。"
    POEM[:4] + "，" + POEM[6:12] + "海" + POEM[12:],  # lines of 4 and 6 characters (still 24)
    POEM[:4] + POEM[5:],                     # a line of 4 characters
    POEM[:5] + "白" + POEM[5:],              # a line of 6 characters
    POEM[:18],                               # 3 lines
    POEM[:17] + "。",                        # 3 lines, ended
    POEM[:6] + "white" + POEM[11:],          # Latin letters in a line
    POEM[:6] + "12345" + POEM[11:],          # digits
    POEM[:2] + " " + POEM[3:],               # a space inside a line
    POEM[:2] + "\u3000" + POEM[3:],          # an ideographic space
    POEM + "\n",                             # a trailing line break
    POEM + "白",                             # trailing text
    " " + POEM[1:],                          # leading text
    POEM + POEM,                             # two poems
    "",
    None,
    list(POEM),
])
def test_is_well_formed_rejects_every_kind_of_malformed_text(text):
    assert not is_well_formed(text)


def test_form_mask_allows_exactly_the_tokens_of_each_position():
    mask = FormMask(TOK)
    han = set(HAN)
    for pos in range(POEM_LEN + 1):
        allowed = {"\n"} if pos == POEM_LEN else {"，"} if pos in (5, 17) else \
            {"。"} if pos in (11, 23) else han
        got = {TOK.vocab[i] for i in torch.nonzero(mask(pos)).flatten().tolist()}
        assert got == allowed, pos
    with pytest.raises(ValueError, match="position must be an int from 0 to 24"):
        mask(POEM_LEN + 1)


@pytest.mark.parametrize("tokenizer, error, message", [
    (BPETokenizer.train("hello", 256), TypeError, "needs a CharTokenizer"),
    (CharTokenizer.train("白日。\n"), ValueError, "has no '，'"),
    (CharTokenizer.train(",.\n"), ValueError, "has no '，' and '。'"),
    (CharTokenizer.train("，。abc\n"), ValueError, "has no CJK characters"),
    (CharTokenizer.train(POEM), ValueError, "has no '\\\\n'"),
])
def test_form_mask_refuses_a_tokenizer_that_cannot_write_a_quatrain(tokenizer, error, message):
    with pytest.raises(error, match=message + ".*poems_text"):
        FormMask(tokenizer)


# --------------------------------------------------------------------------- constrained decoding


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1.0, 30.0, 300.0]),
       temperature=st.floats(0.2, 3.0), top_k=st.one_of(st.none(), st.integers(1, TOK.vocab_size)))
def test_every_constrained_poem_is_well_formed_whatever_the_model_prefers(seed, scale, temperature,
                                                                         top_k):
    model = random_gpt(seed, scale)
    poems = generate_poems(model, TOK, 6, generator=torch.Generator().manual_seed(seed),
                           temperature=temperature, top_k=top_k)
    assert len(poems) == 6 and all(is_well_formed(p) for p in poems), poems


def test_without_the_constraint_an_untrained_model_does_not_write_quatrains():
    for seed in range(3):
        model, gen = random_gpt(seed, scale=30.0), torch.Generator().manual_seed(seed)
        free = generate_poems(model, TOK, 40, generator=gen, constrained=False)
        forced = generate_poems(model, TOK, 40, generator=gen)
        assert form_rate(free) == 0.0 and form_rate(forced) == 1.0
        assert all("\n" not in p and len(p) <= POEM_LEN + 1 for p in free)
        # What the mask removed: characters that are not ideographs where the form wants one.
        assert any(not is_cjk(c) for p in free for c in p if c not in "，。")


def test_generation_repeats_with_a_seed_in_batches_and_restores_training_mode():
    model = random_gpt(0, scale=30.0)
    model.train()
    a = generate_poems(model, TOK, 7, generator=torch.Generator().manual_seed(1), batch_size=3)
    b = generate_poems(model, TOK, 7, generator=torch.Generator().manual_seed(1), batch_size=3)
    one = generate_poem(model, TOK, generator=torch.Generator().manual_seed(1))
    assert a == b and len(a) == 7 and len(set(a)) > 1 and model.training
    assert one == generate_poems(model, TOK, 1, generator=torch.Generator().manual_seed(1))[0]


def test_a_model_that_returns_logits_and_loss_works_too():
    model = NeuralBigram(TOK.vocab_size)  # forward returns (logits, loss); uniform at the start
    poems = generate_poems(model, TOK, 5, generator=torch.Generator().manual_seed(0))
    assert form_rate(poems) == 1.0


@pytest.mark.parametrize("prompt", ["白", "白日依山尽，", POEM[:13], POEM[:23], POEM])
@pytest.mark.parametrize("constrained", [True, False])
def test_a_prompt_that_starts_a_quatrain_is_continued(prompt, constrained):
    poem = generate_poem(random_gpt(3), TOK, generator=torch.Generator().manual_seed(0),
                         constrained=constrained, prompt=prompt)
    assert poem.startswith(prompt) and (is_well_formed(poem) or not constrained)
    if prompt == POEM and constrained:
        assert poem == POEM  # complete: nothing left to sample


@pytest.mark.parametrize("prompt, message", [
    ("白日依山尽,", "character 5 is ',', but the form needs '，'"),
    ("白日依山，", "character 4 is '，', but the form needs a CJK character"),
    ("ab", "character 0 is 'a'"),
    ("\n白日", "character 0 is '\\\\n'"),
    (POEM + "白", "it has 25 characters, more than a quatrain's 24"),
])
def test_a_prompt_that_cannot_start_a_quatrain_is_refused(prompt, message):
    expected = "is not the start of a quatrain: " + message + ".*e.g. prompt="
    with pytest.raises(ValueError, match=expected):
        generate_poem(random_gpt(0), TOK, prompt=prompt)


def test_a_prompt_with_characters_the_model_never_saw_and_a_mismatched_model_are_refused():
    with pytest.raises(ValueError, match="'静' is not in the tokenizer's vocabulary"):
        generate_poem(random_gpt(0), TOK, prompt="静")
    small = CharTokenizer.train(HAN + "，。\n")
    with pytest.raises(ValueError, match=f"scores {TOK.vocab_size} tokens but the tokenizer has "
                                         f"{small.vocab_size}: build the model with vocab_size"):
        generate_poem(random_gpt(0), small)


# ---------------------------------------------------------------------------------- the measures


TRAINING = ["床前明月光，疑是地上霜。举头望明月，低头思故乡。", POEM]
UNSEEN = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"


def test_memorised_lines_is_the_share_of_lines_seen_in_training():
    assert memorised_lines([POEM], TRAINING) == 1.0
    assert memorised_lines([UNSEEN], TRAINING) == 0.0
    mixed = POEM[:12] + UNSEEN[12:]  # two training lines, then two new ones
    assert memorised_lines([mixed], TRAINING) == 0.5
    assert memorised_lines([POEM, UNSEEN, mixed, "床前明月光，" + UNSEEN[6:]], TRAINING) == 7 / 16
    assert memorised_lines(["白日依山尽黄河入海流"], TRAINING) == 0.0  # one 10-character line
    assert poem_lines(POEM) == ["白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"]


def test_copied_poems_and_form_rate_count_whole_poems():
    assert copied_poems([POEM, UNSEEN, POEM[:12] + UNSEEN[12:]], TRAINING) == 1 / 3
    assert form_rate([POEM, UNSEEN, POEM + "\n", "abc"]) == 0.5


@pytest.mark.parametrize("measure", [form_rate, lambda p: memorised_lines(p, TRAINING),
                                     lambda p: copied_poems(p, TRAINING)])
def test_measures_refuse_no_poems_and_a_bare_string(measure):
    with pytest.raises(ValueError, match="is empty: there is nothing to measure"):
        measure([])
    with pytest.raises(TypeError, match="got one str: wrap it"):
        measure(POEM)


def test_bytes_per_char_is_3_for_chinese_and_1_for_english():
    assert bytes_per_char(POEM) == 3.0  # 20 ideographs and 4 full-width marks, 3 bytes each
    assert bytes_per_char("To be, or not to be: that is the question.") == 1.0
    assert bytes_per_char("GPT写诗") == 9 / 5
    assert bytes_per_char("𠀀") == 4.0  # outside the BMP: 4 bytes
    with pytest.raises(ValueError, match="text is empty"):
        bytes_per_char("")


def test_bytes_per_token_compares_characters_with_byte_level_bpe():
    text = poems_text(load_quatrains()[:300])
    chars, raw = CharTokenizer.train(text), BPETokenizer.train(text, 256)  # 256: bytes, no merges
    bpe = BPETokenizer.train(text, 512)
    assert bytes_per_token(text, chars) == bytes_per_char(text)
    assert bytes_per_token(text, raw) == 1.0
    # 256 merges cannot cover ~2,000 distinct characters: most still cost several byte tokens.
    assert 1.0 < bytes_per_token(text, bpe) < bytes_per_token(text, chars)


# ------------------------------------------------------------------------ your own text file


def test_read_text_file_returns_the_text_with_plain_line_ends(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes("\ufeff".encode() + POEM.encode() + b"\r\n" + UNSEEN.encode() + b"\r\n")
    assert read_text_file(path, block_size=48) == POEM + "\n" + UNSEEN + "\n"  # 50 characters
    with pytest.raises(ValueError, match="holds 50 characters, too few for block_size=50: .* at "
                                         "least 51 .*add text .* or choose a smaller block_size"):
        read_text_file(path, block_size=50)


def test_read_text_file_names_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="there is no file .*nope.txt .*check the name"):
        read_text_file(tmp_path / "nope.txt")
    with pytest.raises(IsADirectoryError, match="is a folder: give the path of a text file"):
        read_text_file(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n \n\t"])
def test_read_text_file_refuses_an_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="empty.txt is empty.*: put the text to train on in it"):
        read_text_file(path)


def test_read_text_file_names_the_byte_of_a_gbk_or_latin1_file_and_the_fix(tmp_path):
    gbk, latin = tmp_path / "gbk.txt", tmp_path / "latin.txt"
    gbk.write_bytes(POEM.encode("gbk"))  # 白 is b"\xb0\xd7" in GBK
    latin.write_bytes("café".encode("latin1"))
    with pytest.raises(ValueError, match=r"gbk.txt is not UTF-8 text \(byte 0xb0 at offset 0 cannot "
                                         r"be decoded\)\. It reads as Chinese in GBK.*Save it again as "
                                         r"UTF-8.*iconv -f gb18030 -t utf-8"):
        read_text_file(gbk)
    with pytest.raises(ValueError, match="byte 0xe9 at offset 3 .*iconv -f latin1 -t utf-8"):
        read_text_file(latin)


def test_the_training_command_reports_a_bad_text_file_the_same_way(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes(POEM.encode("gbk"))
    with pytest.raises(SystemExit, match=r"error: --text-file: .*gbk.txt is not UTF-8 text \(byte 0xb"):
        llmlab.train.main(["--text-file", str(path), "--out", str(tmp_path / "run.pt"),
                           "--device", "cpu", "--no-progress"])
    assert not (tmp_path / "run.pt").exists()


def test_the_training_command_refuses_a_file_shorter_than_one_window_before_writing_anything(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Too short.", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"--text-file: .*short.txt holds 10 characters, too few "
                                         r"for block_size=16"):
        llmlab.train.main(["--text-file", str(path), "--block-size", "16", "--out",
                           str(tmp_path / "run.pt"), "--device", "cpu", "--no-progress"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.txt"]  # no tokenizer file either
