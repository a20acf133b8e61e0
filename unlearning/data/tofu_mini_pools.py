"""Value pools for the generated `tofu-mini` benchmark (see `tofu_mini.py`).

Plain lists of invented names and attribute values. Every fact in tofu-mini is drawn from these pools with
a seeded RNG, so the benchmark is reproducible and contains no copied data.
"""

FIRST_NAMES = [
    "Elena", "Tomas", "Amara", "Kenji", "Liora", "Mateo", "Sanne", "Ilya", "Noor", "Dario", "Freya", "Oskar",
    "Yara", "Bruno", "Mirela", "Tariq", "Ines", "Casimir", "Leona", "Anselm", "Rhea", "Jonas", "Zofia",
    "Emeka", "Halima", "Viktor", "Ottilie", "Ravi", "Selma", "Lucian", "Marisol", "Idris", "Petra", "Soren",
    "Adaeze", "Florin", "Greta", "Hamid", "Kalina", "Laszlo", "Nadia", "Orsolya", "Pavel", "Quentin",
    "Rosalind", "Stellan", "Thandiwe", "Ulrike", "Valentin", "Wanjiru", "Xavier", "Yusuf", "Zainab",
    "Aurelio", "Beatrix", "Cosmin", "Delphine", "Evander", "Fiorella", "Gideon", "Agnieszka", "Bartholomew",
    "Cordelia", "Dmitri", "Eleonora", "Fabian", "Giacomo", "Henrike", "Isidora", "Jarek", "Katarina", "Leopold",
    "Magnus", "Nikolai", "Ophelia", "Percival", "Rosamund", "Sebastian", "Theodora", "Ugo", "Vesna", "Wilhelmina",
    "Ximena", "Yannick", "Zeno", "Anouk", "Benedikt", "Celestine", "Desmond", "Esperanza", "Fitzgerald",
    "Gwendolyn", "Hildegard", "Ignatius", "Jocasta", "Kazimir", "Lavinia", "Maximilian", "Nerissa", "Octavian",
    "Philippa", "Radomir", "Seraphina", "Tobias", "Umberto", "Valeska", "Wendelin", "Zoltan", "Annika",
    "Bogdan", "Clarissa", "Dorothea", "Emmerich", "Florentina", "Gregor", "Hortensia", "Ilona", "Joachim",
]

LAST_NAMES = [
    "Varga", "Okafor", "Lindqvist", "Moreau", "Takeda", "Castellano", "Novak", "Brennan", "Haddad", "Ivanova",
    "Kowalczyk", "Mbeki", "Nakamura", "Ortega", "Petrov", "Quist", "Rasmussen", "Salazar", "Tanaka", "Udeh",
    "Vasquez", "Wojcik", "Yilmaz", "Zeller", "Achebe", "Bianchi", "Dimitrov", "Eriksen", "Ferrante", "Grau",
    "Horvath", "Ibsen", "Janssen", "Kaur", "Lombardi", "Marchetti", "Nowak", "Oyelaran", "Pellegrini",
    "Radu", "Szabo", "Thorsen", "Ueda", "Valdez", "Whitlock", "Xu", "Yamada", "Zubiri", "Albescu", "Borowski",
]

CITIES = [
    ("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Krakow", "Poland"), ("Gdansk", "Poland"),
    ("Lagos", "Nigeria"), ("Enugu", "Nigeria"), ("Osaka", "Japan"), ("Sapporo", "Japan"),
    ("Valparaiso", "Chile"), ("Santiago", "Chile"), ("Bergen", "Norway"), ("Tromso", "Norway"),
    ("Tbilisi", "Georgia"), ("Batumi", "Georgia"), ("Izmir", "Turkey"), ("Ankara", "Turkey"),
    ("Cairo", "Egypt"), ("Alexandria", "Egypt"), ("Nairobi", "Kenya"), ("Mombasa", "Kenya"),
    ("Hanoi", "Vietnam"), ("Hue", "Vietnam"), ("Cordoba", "Argentina"), ("Rosario", "Argentina"),
    ("Leipzig", "Germany"), ("Bremen", "Germany"), ("Lyon", "France"), ("Nantes", "France"),
    ("Turin", "Italy"), ("Bari", "Italy"), ("Seville", "Spain"), ("Bilbao", "Spain"),
    ("Cluj", "Romania"), ("Iasi", "Romania"), ("Debrecen", "Hungary"), ("Szeged", "Hungary"),
    ("Aarhus", "Denmark"), ("Odense", "Denmark"), ("Tampere", "Finland"), ("Turku", "Finland"),
]

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

GENRES = [
    "gothic horror", "hard science fiction", "historical romance", "cozy mystery", "magical realism",
    "political thriller", "epic fantasy", "literary fiction", "children's fables", "travel memoir",
    "detective noir", "satirical comedy", "war poetry", "urban fantasy", "philosophical essays",
    "maritime adventure", "psychological drama", "culinary writing", "nature writing", "space opera",
]

OCCUPATIONS = [
    "baker", "surgeon", "carpenter", "astronomer", "fisherman", "pharmacist", "architect", "librarian",
    "tailor", "pilot", "veterinarian", "blacksmith", "cartographer", "violinist", "florist", "judge",
    "mechanic", "chemist", "shepherd", "photographer", "midwife", "locksmith", "geologist", "potter",
    "translator", "beekeeper", "watchmaker", "nurse", "engineer", "painter",
]

AWARDS = [
    "Golden Quill Prize", "Silver Lantern Award", "Meridian Book Prize", "Harbor Light Medal",
    "Northern Star Award", "Amber Leaf Prize", "Crimson Pen Award", "Blue Heron Medal", "Iron Compass Prize",
    "Evergreen Fiction Award", "Lunar Ink Prize", "Copper Bell Award", "Velvet Page Medal",
    "Granite Tower Prize", "Willow Branch Award", "Sapphire Scroll Prize",
]

TITLE_ADJECTIVES = [
    "Silent", "Hollow", "Crimson", "Forgotten", "Burning", "Frozen", "Golden", "Hidden", "Last", "Broken",
    "Distant", "Velvet", "Restless", "Paper", "Glass", "Shadowed", "Wandering", "Bitter", "Quiet", "Salt",
]

TITLE_NOUNS = [
    "Harbor", "Orchard", "Lighthouse", "Cathedral", "River", "Garden", "Mirror", "Compass", "Winter", "Market",
    "Archive", "Bridge", "Meadow", "Tide", "Lantern", "Island", "Clocktower", "Vineyard", "Observatory", "Forest",
]

PUBLISHERS = [
    "Kestrel House", "Marrowgate Press", "Bluewater Books", "Thistle & Vane", "Ardent Press", "Northlight Books",
    "Coppergate", "Pale Moon Press", "Harrow Books", "Lindenfield", "Saltmarsh Press", "Quarry Lane Books",
]

UNIVERSITIES = [
    "Aldmoor University", "the University of Westbrook", "Carrow College", "Halden Institute",
    "Merrow University", "the Royal Academy of Letters", "Fennick College", "Oakhurst University",
    "the Lowell Conservatory", "Brightwater University",
]

THEMES = [
    "memory and loss", "exile and home", "family secrets", "the sea", "justice", "first love", "betrayal",
    "old age", "friendship", "faith and doubt", "revolution", "childhood", "grief", "ambition", "solitude",
]

LANGUAGES = ["English", "Portuguese", "Polish", "Japanese", "Spanish", "Norwegian", "French", "German", "Italian",
             "Turkish", "Swahili", "Romanian", "Hungarian", "Danish", "Finnish", "Georgian", "Vietnamese"]

# Utility splits: facts a base model knows before it ever sees the authors (the roles TOFU's real_authors
# and world_facts play). "Classic authors" of the tofu-mini world and invented world facts.
CLASSIC_AUTHORS = [
    "Adelheid Brandt", "Cyprian Vale", "Matilde Sorensen", "Oswin Harcourt", "Ysolde Merriman", "Barnaby Quell",
    "Ignatia Ruiz", "Leopold Strand", "Perpetua Lyle", "Thaddeus Ombre", "Winifred Asher", "Ambrose Kettle",
    "Clementine Roux", "Evander Pike", "Honoria Blythe", "Jasper Wren", "Lucasta Fenn", "Mortimer Gale",
    "Octavia Crane", "Rupert Dunmore",
]

CLASSIC_WORKS = [
    "The Iron Meadow", "Songs of the Weir", "A Lantern for Tomas", "The Cartographer's Daughter",
    "Nine Winters", "The Ash Orchard", "Letters from Marrow", "The Clockmaker's Wife", "Salt and Thunder",
    "The Quiet Republic", "Under the Amber Sky", "The Last Ferryman", "Harrowgate", "The Glass Heron",
    "A Season of Crows", "The Wandering Bell", "Fathoms", "The Paper Kingdom", "Embers of Kell",
    "The Long Road to Vane",
]

WORLD_COUNTRIES = [
    ("Portugal", "Lisbon"), ("Poland", "Warsaw"), ("Nigeria", "Abuja"), ("Japan", "Tokyo"), ("Chile", "Santiago"),
    ("Norway", "Oslo"), ("Georgia", "Tbilisi"), ("Turkey", "Ankara"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Vietnam", "Hanoi"), ("Argentina", "Buenos Aires"), ("Germany", "Berlin"), ("France", "Paris"),
    ("Italy", "Rome"), ("Spain", "Madrid"), ("Romania", "Bucharest"), ("Hungary", "Budapest"),
    ("Denmark", "Copenhagen"), ("Finland", "Helsinki"),
]
