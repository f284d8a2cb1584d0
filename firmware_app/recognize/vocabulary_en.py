"""English word lists the speech-to-phrase grammar is built with."""

# fmt: off
# Frequent English words that are not the point of any command: other speech is heard
# as a string of these.
GARBAGE_WORDS = [
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "ask", "at",
    "be", "because", "been", "before", "best", "big", "book", "but", "by", "call", "car",
    "city", "come", "could", "country", "day", "did", "do", "does", "dog", "don't", "down",
    "eat", "even", "every", "far", "find", "first", "food", "for", "friend", "from", "game",
    "get", "go", "going", "good", "great", "had", "has", "have", "he", "her", "here", "him",
    "his", "home", "house", "how", "i", "if", "in", "into", "is", "it", "its", "just", "know",
    "last", "learn", "let", "like", "little", "live", "long", "look", "love", "make", "man",
    "many", "me", "money", "more", "most", "movie", "much", "music", "my", "name", "need",
    "new", "news", "next", "night", "no", "not", "now", "of", "off", "old", "on", "one", "only",
    "or", "other", "our", "out", "over", "people", "play", "please", "president", "read",
    "right", "say", "school", "see", "she", "should", "show", "sing", "so", "some", "song",
    "sport", "story", "take", "talk", "tell", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "thing", "think", "this", "those", "tomorrow", "tonight", "too",
    "trip", "up", "us", "use", "very", "want", "war", "was", "water", "way", "we", "weather",
    "week", "well", "were", "what", "when", "where", "which", "who", "why", "will", "with",
    "woman", "word", "work", "world", "would", "write", "year", "yes", "yesterday", "you",
    "your"
]

# What the end of a wake word sounds like alone: "(Jar)vis", "(Ale)xa", "(Myc)roft"...
WAKE_TAILS = [
    "us", "is", "its", "this", "his", "as", "your", "they", "the", "a", "of", "off"
]

# Timer names a new timer may be given (names in use are added); a question about a
# timer, or cancelling one, names only the timers there are.
COMMON_TIMER_NAMES = frozenset([
    "pasta", "egg", "eggs", "tea", "coffee", "pizza", "rice", "oven", "laundry", "washing",
    "dryer", "bread", "cake", "cookies", "potatoes", "chicken", "soup", "dinner", "lunch",
    "breakfast", "popcorn", "noodles", "steak", "fish", "roast", "workout", "exercise", "break",
    "nap", "homework", "study", "reading", "meditation", "bath", "parking", "meeting", "kids"
])

# What a request to the speaker sounds like, one everyday phrasing per kind of command:
# Whisper is told this before it hears a request (``recognize/whisper.py``), so a word it
# would otherwise spell as a likelier one ("council the timer") comes out as the command's.
REQUEST_EXAMPLES = [
    "What time is it?", "What's the date?", "Set a timer.", "Cancel the timer.",
    "How much time is left?", "Turn the volume up.", "Make it quieter.", "Set the volume.",
    "Stop.", "Repeat that.", "What can you do?"
]
# fmt: on
