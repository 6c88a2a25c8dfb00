"""Domain words the rules backend uses for the ankle task (German and English)."""

from report2label.core.rulespec import FindingRule, RuleSet

RULES = RuleSet(
    findings=(
        FindingRule(
            label="fracture",
            mentions=(
                r"fraktur", r"\bfractur\w*", r"\bfx\b", r"fissur\w*", r"infraktion", r"\bweber[\s-]*[abc]\b",
                r"bruch\b", r"knöchern\w*\s+(?:band)?ausriss\w*", r"\bavulsion\b",
            ),
            unmentions=(r"(?:material|schrauben|platten|implantat|draht|cerclage)bruch",),
            sites=(
                r"fibula", r"tibia", r"malleol", r"knöchel", r"talus", r"\btalar", r"sprunggelenk", r"\bosg\b",
                r"volkmann", r"pilon", r"weber", r"maisonneuve", r"tillaux", r"triplane", r"\bankle\b", r"mortise",
            ),
            other_sites=(
                r"metatars", r"mittelfu(?:ß|ss)", r"\bmt\s*-?\s*(?:[1-5]|i{1,3}|iv|v)\b", r"kalkane", r"calcane",
                r"fersenbein", r"navicular", r"kahnbein", r"cuboid", r"würfelbein", r"cuneiform", r"keilbein",
                r"phalan", r"zehe", r"\btoes?\b", r"\bjones\b", r"fu(?:ß|ss)wurzel", r"\btarsal", r"\bfoot\b",
                r"\bfu(?:ß|ss)(?:es)?\b",
            ),
            uncertain=1,
            resolved=(
                r"(?:kein\w*|ohne)\s+(?:\w+\s+){0,3}fraktur(?:linie|spalt)\w*\s+(?:\w+\s+){0,3}mehr\b",
                r"fraktur(?:linie|spalt)\w*\s+(?:\w+\s+){0,4}nicht mehr\b",
                r"\bno (?:\w+\s+){0,2}fracture (?:line|gap)s?\b(?:\s+\w+){0,4}\s+(?:any ?more|any longer)\b",
                r"\bfracture (?:line|gap)s? (?:is |are )?no longer\b",
                r"\bno longer (?:a )?(?:visible )?fracture (?:line|gap)\b",
            ),
        ),
    ),
)
