"""Domain words the rules backend uses for the chest X-ray task (CheXpert's findings; English and German).

Each finding has four states (CheXpert's 1 / 0 / -1 / blank): the engine reads mentions as
positive, negated or uncertain, and ``absent`` statements ("heart size is normal") as negative.
Conventions, after the CheXpert labeler and the MeSH coding of the Indiana collection: old and
healed fractures are fractures; lines, tubes, catheters, pacemakers and their leads, drains and
prosthetic heart valves are support devices, surgical clips, stents and sternotomy wires are not;
a calcified nodule is a granuloma, not a lung lesion; vascular congestion alone is not edema;
low lung volumes alone are not atelectasis.
"""

from report2label.core.rulespec import FindingRule, RuleSet

HEART = r"(?:heart|cardiac (?:silhouette|shadow|contours?|size)|cardiomediastinal (?:silhouette|contours?|shadow))"
NORMAL = (
    r"(?:normal|within normal limits|unremarkable|upper limits? (?:of )?normal|(?:at )?the upper limits? of normal)"
)
DEVICE = r"(?:catheter|screw|wire|lead|hardware|device|line|tube|plate|prosthesis|rod|pin)"
MEDIASTINUM = r"(?:cardio)?mediastin\w*(?: (?:silhouette|contours?|shadow|width|size))?"

RULES = RuleSet(
    findings=(
        FindingRule(
            label="atelectasis",
            mentions=(r"atele[ck]ta\w*", r"dystelekta\w*", r"\bcollapse[ds]?\b", r"\bkollab\w*"),
            unmentions=(r"vertebr\w*(?: \w+){0,2} collapse", r"collapse\w*(?: \w+){0,3} vertebr\w*"),
        ),
        FindingRule(
            label="cardiomegaly",
            mentions=(
                r"[ck]ardiomegal\w*",
                r"\bcardiac enlargement\b",
                r"\benlarge(?:d|ment of the|ment of) " + HEART,
                r"\b(?:large|enlarged) heart\b",
                r"\b(?:heart|cardiac) enlargement\b",
                r"\b(?:increase\w*|enlarge\w*) (?:in |of )?(?:the )?(?:heart|cardiac) size\b",
                rf"\b{HEART}(?: size)?(?: \w+){{0,2}}? borderline\b",
                rf"\bborderline (?:\w+ )?{HEART}",
                rf"\b{HEART}(?: size)?(?: \w+){{0,4}}? (?:enlarged|large|increased)\b",
                rf"\b{HEART}(?: size)? (?:is |appears? )?(?:at )?{NORMAL}(?: in size)? or (?:\w+ )?"
                r"(?:enlarged|large)\b",
                r"\bherz\w*(?: \w+){0,3}? (?:vergrößert|verbreitert)\b",
                r"\bherzvergrößerung\b",
                r"\b(?:vergrößert|verbreitert)\w* herz\w*",
            ),
            absent=(
                rf"\b{HEART}(?: size)? (?:is |are |appears? |remains? )?(?:at )?{NORMAL}",
                rf"\b{HEART} (?:is |appears )?(?:normal|upper (?:limits? )?(?:of )?normal) in size\b",
                r"\bnormal (?:heart|cardiac|cardiomediastinal) (?:size|silhouette|contours?)\b",
                r"\bnormal[- ]sized heart\b",
                r"\bherz\w* (?:ist )?(?:normal groß|normgroß)",
                r"\bnormgroß\w* herz",
            ),
        ),
        FindingRule(
            label="consolidation",
            mentions=(r"\bconsolidat\w*", r"\bkonsolidierung\w*", r"\bkonsolidation\w*"),
        ),
        FindingRule(
            label="edema",
            mentions=(r"\bo?edema\w*", r"ödem\w*"),
            unmentions=(
                r"\b(?:soft[- ]tissue|subcutaneous|extremity|peripheral|pedal|scrotal|facial|chest wall) o?edema",
                r"(?:weichteil|haut|knochenmark|lid|bein|unterschenkel)\w*ödem",
            ),
        ),
        FindingRule(
            label="enlarged_cardiomediastinum",
            mentions=(
                r"\b(?:widen\w*|enlarged|prominent|broad\w*) (?:superior )?(?:cardio)?mediastin\w*",
                r"\bmediastin\w* (?:widening|enlargement|prominence)\b",
                rf"\b{MEDIASTINUM}(?: \w+){{0,4}}? (?:enlarged|widened|wide|prominent|increased)\b",
                r"\bmediastin\w*(?: \w+){0,3}? verbreitert\b",
                r"\bmediastinalverbreiterung\b",
                r"\bverbreitert\w* (?:oberes )?mediastinum\b",
            ),
            absent=(
                rf"\b{MEDIASTINUM} (?:is |are |appears? |remains? )?{NORMAL}",
                r"\b(?:normal|unremarkable) (?:cardio)?mediastin\w* (?:silhouette|contours?|shadow|width|size)\b",
                r"\bmediastinum (?:ist )?(?:schlank|mittelständig|normal breit)\b",
            ),
        ),
        FindingRule(
            label="fracture",
            mentions=(r"\bfractur\w*", r"\bfx\b", r"fraktur\w*", r"\binfraktion\w*"),
            unmentions=(
                rf"\b{DEVICE}s? (?:is |are |appears? )?fractur\w*",
                rf"\bfracture\w* of (?:the )?(?:\w+ ){{0,3}}{DEVICE}",
                rf"\b{DEVICE}s?(?: \w+){{0,5}}? (?:is|are|appears?) (?:\w+ )?fractured\b",
                r"(?:material|schrauben|platten|draht|katheter|sonden)bruch",
            ),
        ),
        FindingRule(
            label="lung_lesion",
            mentions=(
                r"\bnodul\w*",
                r"\bmass(?:es)?\b",
                r"\blesions?\b",
                r"\btumou?r\w*",
                r"\bneoplas\w*",
                r"\bcarcinoma\w*",
                r"\bmalignan\w*",
                r"\bmetasta\w*",
                r"\brundherd\w*",
                r"\braumforderung\w*",
                r"\bknoten\b",
                r"\bkarzinom\w*",
            ),
            unmentions=(
                r"\bcalcified (?:\w+ )?nodul\w*",
                r"\bnodular calcification\w*",
                r"\b(?:osseous|bony|bone|lytic|sclerotic|blastic|skin|cutaneous|breast|nipple|soft[- ]tissue) "
                r"(?:\w+ )?(?:lesions?|mass(?:es)?|nodules?)",
                r"\b(?:lymph|hilar|mediastinal) (?:\w+ )?mass",
            ),
        ),
        FindingRule(
            label="lung_opacity",
            mentions=(
                r"\bopaci\w*",
                r"\binfiltrat\w*",
                r"\bdensit(?:y|ies)\b",
                r"\bair-?space (?:disease|process)\b",
                r"\bhaz(?:e|iness|y)\b",
                r"\bground[- ]glass\b",
                r"\breticul\w*",
                r"\binterstitial (?:marking|prominence|process|pattern|thickening)\w*",
                r"verschattung\w*",
                r"transparenzminderung\w*",
                r"\bverdichtung\w*",
            ),
            unmentions=(r"\b(?:bone|bony|osseous|mineral|low|soft[- ]tissue|breast) densit\w*",),
            absent=(
                r"\b(?:lungs?|lung fields) (?:are |is |remains? |appears? )?(?:(?!not\b)\w+ ){0,3}?clear\b",
                r"\bclear lungs?\b",
                r"\blunge\w*(?: \w+){0,2}? (?:frei|infiltratfrei)\b",
            ),
        ),
        FindingRule(
            label="pleural_effusion",
            mentions=(
                r"\beffusions?\b",
                r"\bpleural fluid\b",
                r"\bhydrothorax\b",
                r"\bfluid in the (?:\w+ )?pleural spaces?\b",
                r"erguss\w*",
                r"ergüsse\w*",
            ),
            unmentions=(
                r"\b(?:pericardial|joint|knee|shoulder) effusion",
                r"(?:perikard|gelenk|knie)\w*erguss",
            ),
            absent=(
                r"\b(?:costophrenic|phrenic) (?:angles?|sulci|recess\w*)(?: \w+)? "
                r"(?:are |is )?(?:sharp|clear|preserved|normal)",
                r"\bsharp costophrenic\b",
                r"\brandwinkel\w* (?:\w+ )?(?:frei|entfaltet|spitz)\b",
            ),
        ),
        FindingRule(
            label="pleural_other",
            mentions=(
                r"\bpleural(?: \w+)? (?:thickening|plaques?|calcification\w*|scar\w*|reaction)\b",
                r"\bpleuro-?parenchymal (?:scar\w*|thickening|changes?)\b",
                r"\bfibrothorax\b",
                r"\bapical (?:pleural )?cap\w*\b",
                r"\bpleura\w* ?(?:verdickung|schwiele|plaques?)\w*",
                r"\bpleurakuppenschwiele\w*",
            ),
        ),
        FindingRule(
            label="pneumonia",
            mentions=(r"pneumoni\w*", r"\bbronchopneumoni\w*"),
        ),
        FindingRule(
            label="pneumothorax",
            mentions=(r"pneumothora\w*", r"\bptx\b", r"\bpneu\b"),
        ),
        FindingRule(
            label="support_devices",
            mentions=(
                r"\bpace(?:maker|r)s?\b",
                r"\ba?icds?\b",
                r"\bdefibrillator\w*",
                r"catheter\w*",
                r"\btips?\b(?: \w+){0,6}? (?:svc|superior vena cava|cavo-?atrial|caval|right atri\w*|brachiocephalic|"
                r"innominate|subclavian|jugular|carina|stomach)\b",
                r"\btip (?:is |are )?(?:projects?|projecting|overl\w+|terminat\w*)\b",
                r"\b(?:neuro)?stimulator\w*",
                r"\bdevices?\b",
                r"\bgenerators?\b",
                r"\btracheostomy\b",
                r"\bprosthe\w*",
                r"\bbone anchors?\b",
                r"\bimplant(?:s|able|ed)?\b",
                r"\b(?:ivc |caval )?filter\b",
                r"\bpicc\b",
                r"\b(?:central|venous|arterial|midline|swan[- ]ganz|dialysis|subclavian|jugular|femoral|hickman) "
                r"(?:venous )?lines?\b",
                r"\bline tip\b",
                r"\btub(?:e|es|ing)\b",
                r"\bport\b",
                r"\bport-?a-?cath\b",
                r"\bmediport\b",
                r"\bleads\b",
                r"\b(?:pacer|pacemaker|pacing|cardiac|monitoring|ekg|ecg|epicardial|transvenous) leads?\b",
                r"\bdrains?\b",
                r"\b(?:prosthetic|mechanical|artificial|bioprosthetic) (?:\w+ )?valves?\b",
                r"\bvalve (?:replacement|prosthesis)\b",
                r"\b(?:tavr|tavi|lvad|impella|ecmo|iabp)\b",
                r"\bballoon pump\b",
                r"\b(?:pacing|pacer|epicardial|temporary) wires?\b",
                r"\bloop recorder\b",
                r"\boccluder\w*",
                r"\bzvk\b",
                r"katheter\w*",
                r"schrittmacher\w*",
                r"\bsm-?aggregat\w*",
                r"sonden?\b",
                r"\btubus\b",
                r"trachealkanüle\w*",
                r"drainage\w*",
                r"\bportsystem\w*",
                r"elektrode\w*",
                r"klappen(?:prothese|ersatz)\w*",
                r"\bkunstklappe\w*",
            ),
            unmentions=(r"\b(?:breast|penile|testicular|dental|ocular) (?:\w+ )?(?:prosthe\w*|implants?)",),
        ),
    ),
    triggers={
        "pre_negation": (r"\b(?:interval )?removal of\b", r"\bnicht (?=(?:\w+ )?(?:vergrößert|verbreitert))"),
        "pre_uncertainty": (rf"\b{NORMAL}(?: in size)? or\b",),
        "post_negation": (r"\b(?:has |have )?(?:been )?removed\b", r"\bentfernt\b"),
    },
)
