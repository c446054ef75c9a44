// profanity: replaces listed words with *** in the message text.
//
// The text is message.data when it is a string, else message.data.text.
// Words come from ctx.env.WORDS (comma-separated), else a small default
// list. Matching is case-insensitive and on whole words.
var DEFAULT_WORDS = "darn,heck,frak";

// The compiled expression is cached per VM and rebuilt if WORDS changes.
var cached = { words: null, re: null };

function wordsRegExp(words) {
  if (cached.words !== words) {
    var list = words.split(",")
      .map(function (w) { return w.trim(); })
      .filter(function (w) { return w.length > 0; })
      .map(function (w) { return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); });
    cached.words = words;
    cached.re = list.length ? new RegExp("\\b(?:" + list.join("|") + ")\\b", "gi") : null;
  }
  return cached.re;
}

function handle(message, ctx) {
  var re = wordsRegExp(ctx.env.WORDS || DEFAULT_WORDS);
  if (re === null) return message;
  var d = message.data;
  if (typeof d === "string") {
    message.data = d.replace(re, "***");
  } else if (d !== null && typeof d === "object" && typeof d.text === "string") {
    d.text = d.text.replace(re, "***");
  }
  return message;
}
