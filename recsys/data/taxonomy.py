"""The fixed H&M-like catalogue vocabulary the synthetic generator draws from.

Names and codes follow H&M's articles.csv so that generated data looks and joins like the real thing. Each product
type carries the parameters of its behaviour in the latent model: its season (peak day of year and amplitude), its
typical price, how much of the catalogue it takes, and which index groups sell it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INDEX_GROUPS = ("Ladieswear", "Menswear", "Baby/Children", "Divided", "Sport")
INDEX_GROUP_NO = (1, 3, 4, 2, 26)
# index_code, index_name, section name per index group (H&M has several of each; one is enough to join on).
INDEX_NAMES = (
    ("A", "Ladieswear", "Womens Everyday Collection"),
    ("F", "Menswear", "Menswear Collection"),
    ("H", "Children Sizes 92-140", "Kids Girl & Boy"),
    ("D", "Divided", "Divided Collection"),
    ("S", "Sport", "Ladies H&M Sport"),
)

SUMMER, WINTER = 196, 15  # peak day of year: mid-July, mid-January


@dataclass(frozen=True)
class ProductType:
    name: str
    number: int
    group: str  # product_group_name
    garment_group: str
    garment_group_no: int
    peak_day: int
    season_amplitude: float  # log-odds swing between peak and trough / 2
    price: float  # typical price, H&M units (SEK / 590 roughly)
    weight: float  # share of the catalogue's products
    index_groups: tuple[str, ...]  # where it is sold


_ALL = INDEX_GROUPS
_NOT_MEN = ("Ladieswear", "Baby/Children", "Divided")
_NO_SPORT = ("Ladieswear", "Menswear", "Baby/Children", "Divided")
_UP, _LOW, _FULL = "Garment Upper body", "Garment Lower body", "Garment Full body"

PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType("T-shirt", 255, _UP, "Jersey Basic", 1002, SUMMER, 0.35, 0.017, 3.0, _ALL),
    ProductType("Top", 254, _UP, "Jersey Fancy", 1005, SUMMER, 0.3, 0.020, 4.0, ("Ladieswear", "Divided", "Sport")),
    ProductType("Vest top", 253, _UP, "Jersey Fancy", 1005, SUMMER, 0.6, 0.015, 2.0, _ALL),
    ProductType("Blouse", 259, _UP, "Blouses", 1010, SUMMER, 0.15, 0.030, 2.5, ("Ladieswear", "Divided")),
    ProductType("Shirt", 258, _UP, "Shirts", 1011, WINTER, 0.1, 0.030, 1.5, _NO_SPORT),
    ProductType("Sweater", 252, _UP, "Knitwear", 1003, WINTER, 0.7, 0.034, 3.5, _NO_SPORT),
    ProductType("Hoodie", 245, _UP, "Jersey Fancy", 1005, WINTER, 0.45, 0.030, 1.5, _ALL),
    ProductType("Cardigan", 264, _UP, "Knitwear", 1003, WINTER, 0.45, 0.034, 1.0, _NO_SPORT),
    ProductType("Blazer", 301, _UP, "Dresses/Skirts girls", 1013, WINTER, 0.1, 0.050, 0.8, ("Ladieswear", "Menswear")),
    ProductType("Jacket", 264, _UP, "Outdoor", 1007, WINTER, 0.35, 0.060, 1.5, _ALL),
    ProductType("Coat", 262, _UP, "Outdoor", 1007, WINTER, 1.1, 0.085, 1.0, _NO_SPORT),
    ProductType("Trousers", 272, _LOW, "Trousers", 1009, WINTER, 0.05, 0.034, 4.0, _ALL),
    ProductType("Jeans", 272, _LOW, "Trousers Denim", 1016, WINTER, 0.05, 0.040, 2.0, _NO_SPORT),
    ProductType("Shorts", 274, _LOW, "Shorts", 1025, SUMMER, 1.1, 0.020, 1.5, _ALL),
    ProductType("Skirt", 275, _LOW, "Skirts", 1012, SUMMER, 0.35, 0.025, 1.5, _NOT_MEN),
    ProductType("Leggings/Tights", 273, _LOW, "Jersey Basic", 1002, WINTER, 0.3, 0.017, 1.5, (*_NOT_MEN, "Sport")),
    ProductType("Dress", 265, _FULL, "Dresses Ladies", 1013, SUMMER, 0.6, 0.042, 3.5, _NOT_MEN),
    ProductType("Jumpsuit/Playsuit", 267, _FULL, "Jersey Fancy", 1005, SUMMER, 0.45, 0.034, 0.8, _NOT_MEN),
    ProductType("Bikini top", 298, "Swimwear", "Swimwear", 1018, SUMMER, 1.6, 0.017, 1.0, ("Ladieswear", "Divided")),
    ProductType("Swimwear bottom", 59, "Swimwear", "Swimwear", 1018, SUMMER, 1.6, 0.013, 1.0, _ALL),
    ProductType("Swimsuit", 57, "Swimwear", "Swimwear", 1018, SUMMER, 1.5, 0.025, 0.6, (*_NOT_MEN, "Sport")),
    ProductType("Bra", 306, "Underwear", "Under-, Nightwear", 1017, WINTER, 0.0, 0.025, 2.0, ("Ladieswear", "Sport")),
    ProductType("Underwear bottom", 286, "Underwear", "Under-, Nightwear", 1017, WINTER, 0.0, 0.010, 2.0, _ALL),
    ProductType("Socks", 302, "Socks & Tights", "Socks and Tights", 1021, WINTER, 0.25, 0.008, 1.5, _ALL),
    ProductType("Pyjama set", 308, "Nightwear", "Under-, Nightwear", 1017, WINTER, 0.3, 0.030, 0.8, _NO_SPORT),
    ProductType("Hat/beanie", 66, "Accessories", "Accessories", 1019, WINTER, 1.3, 0.013, 0.8, _ALL),
    ProductType("Scarf", 77, "Accessories", "Accessories", 1019, WINTER, 1.2, 0.017, 0.6, _NO_SPORT),
    ProductType("Bag", 67, "Accessories", "Accessories", 1019, WINTER, 0.0, 0.030, 1.0, _NO_SPORT),
    ProductType("Sunglasses", 87, "Accessories", "Accessories", 1019, SUMMER, 1.4, 0.013, 0.5, _NO_SPORT),
    ProductType("Earring", 72, "Accessories", "Accessories", 1019, SUMMER, 0.0, 0.008, 1.5, ("Ladieswear", "Divided")),
    ProductType("Sneakers", 94, "Shoes", "Shoes", 1020, SUMMER, 0.15, 0.050, 1.0, _ALL),
    ProductType("Sandals", 90, "Shoes", "Shoes", 1020, SUMMER, 1.4, 0.034, 0.6, _NO_SPORT),
    ProductType("Boots", 88, "Shoes", "Shoes", 1020, WINTER, 1.2, 0.060, 0.6, _NO_SPORT),
)

# (code, name, perceived value, perceived value id, perceived master, master id, base popularity in log-odds)
COLOURS: tuple[tuple[int, str, str, int, str, int, float], ...] = (
    (9, "Black", "Dark", 4, "Black", 5, 1.3),
    (73, "Dark Blue", "Dark", 4, "Blue", 2, 0.8),
    (10, "White", "Light", 3, "White", 9, 0.7),
    (51, "Light Pink", "Dusty Light", 1, "Pink", 4, 0.3),
    (72, "Blue", "Medium", 5, "Blue", 2, 0.1),
    (7, "Grey", "Medium Dusty", 7, "Grey", 12, 0.0),
    (71, "Light Blue", "Dusty Light", 1, "Blue", 2, 0.0),
    (19, "Greenish Khaki", "Medium Dusty", 7, "Khaki green", 19, -0.2),
    (42, "Red", "Bright", 2, "Red", 18, -0.2),
    (43, "Dark Red", "Dark", 4, "Red", 18, -0.4),
    (6, "Light Grey", "Light", 3, "Grey", 12, -0.3),
    (8, "Dark Grey", "Dark", 4, "Grey", 12, -0.3),
    (93, "Dark Green", "Dark", 4, "Green", 20, -0.4),
    (31, "Light Orange", "Dusty Light", 1, "Orange", 3, -0.5),
    (12, "Light Beige", "Dusty Light", 1, "Beige", 11, -0.2),
    (11, "Off White", "Light", 3, "White", 9, -0.2),
    (52, "Pink", "Medium", 5, "Pink", 4, -0.5),
    (13, "Beige", "Medium Dusty", 7, "Beige", 11, -0.4),
    (22, "Yellow", "Bright", 2, "Yellow", 8, -0.6),
    (17, "Yellowish Brown", "Medium Dusty", 7, "Brown", 15, -0.7),
)
# Bright and light colours sell better in summer, dark ones in winter (log-odds amplitude, peak day).
COLOUR_SEASON = {
    "Dark": (0.35, WINTER),
    "Bright": (0.4, SUMMER),
    "Light": (0.25, SUMMER),
    "Dusty Light": (0.2, SUMMER),
}

GRAPHICAL_APPEARANCES = (
    (1010016, "Solid", 0.50),
    (1010001, "All over pattern", 0.16),
    (1010010, "Melange", 0.07),
    (1010017, "Stripe", 0.06),
    (1010014, "Placement print", 0.05),
    (1010008, "Front print", 0.05),
    (1010004, "Check", 0.04),
    (1010002, "Colour blocking", 0.03),
    (1010011, "Lace", 0.02),
    (1010005, "Application/3D", 0.02),
)

NAME_WORDS = (
    "Luna",
    "Mira",
    "Tilda",
    "Nova",
    "Ella",
    "Alva",
    "Juno",
    "Vera",
    "Iris",
    "Stella",
    "Maja",
    "Freja",
    "Ada",
    "Liam",
    "Noah",
    "Hugo",
    "Otto",
    "Theo",
    "Leo",
    "Milo",
    "Basic",
    "Soft",
    "Classic",
    "Relaxed",
    "Slim",
    "Oversized",
    "Cropped",
    "Ribbed",
    "Linen",
    "Denim",
    "Cotton",
    "Wool",
    "Summer",
    "Winter",
    "City",
    "Sunny",
)
MATERIALS = (
    "soft cotton jersey",
    "organic cotton",
    "a linen blend",
    "fine-knit wool blend",
    "recycled polyester",
    "stretch denim",
    "woven viscose",
    "soft fleece",
    "ribbed modal",
    "lyocell twill",
)
DETAILS = (
    "a round neckline and short sleeves",
    "long sleeves and ribbed cuffs",
    "an elasticated waist",
    "side pockets",
    "a relaxed fit",
    "a slim fit",
    "dropped shoulders",
    "a zip at the front",
    "adjustable straps",
    "a wide hem",
)


def index_group_mask() -> np.ndarray:
    """Boolean matrix [index group, product type]: which types each index group sells."""
    mask = np.zeros((len(INDEX_GROUPS), len(PRODUCT_TYPES)), dtype=bool)
    for t, ptype in enumerate(PRODUCT_TYPES):
        for group in ptype.index_groups:
            mask[INDEX_GROUPS.index(group), t] = True
    return mask
